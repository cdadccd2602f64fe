"""`harness advise` as tables (analysis.advise): per model every candidate it timed, the Pareto front marked and the
recommendation in green; then one row per model with the recommendation, its gains over fp32 and the command that
times it again (also the findings' "How to ship FastViT on this device")."""
from __future__ import annotations

from ..analysis.advise import ModelAdvice, RejudgedClaim, meets, reproduce_command
from .table import Cell, Column, Lacking, Row, Table

FRONT_MARK = "◆"
AGREEMENT_NOTE = ("cosine: mean logit cosine similarity with fp32 torch on the held-out photographs (top-1: share of "
                  "matching classes); mem: the model's share of its process's peak memory")
CONFIRMED_NOTE = ("confirmed: full timing in {repeats} fresh processes, median of their medians, spread "
                  "(max-min)/median")
STAGE_NOTE = "screened: one short run in a kept worker per target (ranks only); " + CONFIRMED_NOTE
FRONT_NOTE = f"{FRONT_MARK}: on the Pareto front of latency, agreement and memory (no other candidate is better on all)"


def candidates_table(found: ModelAdvice, repeats: int = 3) -> Table:
    columns = [Column("choice", "target, recipe, threads", label=True), Column("stage"),
               Column("median_ms", "median ms", "ms"), Column("spread", "spread", "share", 1),
               Column("processes", "proc", "count"), Column("cosine", "cosine", "cosine"),
               Column("top1", "top-1", "share"), Column("memory_mb", "mem MiB", "figure"),
               Column("front", "front", data=False), Column("on_front", shown=False), Column("note"),
               Column("model", shown=False), Column("resolution", shown=False), Column("target", shown=False),
               Column("precision", shown=False), Column("keep_float", shown=False), Column("threads", shown=False),
               Column("run_ids", shown=False)]
    front = {id(c) for c in found.front}
    rows = []
    for candidate in found.candidates:
        best = candidate is found.recommended
        note = "recommended" if best else ""
        if candidate.status != "ok":
            note = candidate.status + (f": {candidate.error.splitlines()[0][:80]}" if candidate.error else "")
        elif not meets(candidate, found.floor):
            note = f"below the floor ({found.floor})"
        choice = candidate.choice
        rows.append(Row({"choice": choice.label, "stage": candidate.stage,
                         "median_ms": Cell(candidate.median_ms, ("noisy",) if candidate.noisy else ()),
                         "spread": candidate.spread, "processes": candidate.processes, "cosine": candidate.cosine,
                         "top1": candidate.top1, "memory_mb": candidate.memory_mb,
                         "front": FRONT_MARK if id(candidate) in front else "", "on_front": id(candidate) in front,
                         "note": note, "model": found.model, "resolution": found.resolution, "target": choice.target,
                         "precision": choice.precision, "keep_float": choice.keep_float, "threads": choice.threads,
                         "run_ids": candidate.run_ids},
                        tone="good" if best else "bad" if note and not best else None))
    notes = [FRONT_NOTE, STAGE_NOTE.format(repeats=repeats), AGREEMENT_NOTE]
    if found.recommended is None:
        notes.insert(0, f"no recommendation: {found.why_none}")
    return Table(f"advise-{found.model}-{found.resolution}",
                 f"{found.model} at {found.resolution}px: {len(found.candidates)} candidates, agreement floor cosine "
                 f"{found.floor}", columns, rows, notes)


def recommendations_table(found: list[ModelAdvice], repeats: int = 3, title: str = "Recommendations") -> Table:
    columns = [Column("model", label=True), Column("resolution", "res", "count"),
               Column("recommended", "recommended target, recipe, threads"),
               Column("median_ms", "median ms", "ms"), Column("cosine", "cosine", "cosine"),
               Column("gain_runtime", "vs its fp32", "ratio"), Column("runtime_fp32_ms", shown=False),
               Column("gain_fastest", "vs fastest fp32", "ratio"), Column("fastest_fp32", "fastest fp32"),
               Column("fastest_fp32_ms", shown=False), Column("command", "times it again", "command")]
    rows = []
    for item in found:
        best = item.recommended
        rows.append(Row({"model": item.model, "resolution": item.resolution,
                         "recommended": best.choice.label if best else Cell(f"none: {item.why_none}", tone="bad"),
                         "median_ms": best.median_ms if best else None, "cosine": best.cosine if best else None,
                         "gain_runtime": item.gain_over_runtime_fp32,
                         "runtime_fp32_ms": item.runtime_fp32.median_ms if item.runtime_fp32 else None,
                         "gain_fastest": item.gain_over_fastest_fp32,
                         "fastest_fp32": item.fastest_fp32.choice.label if item.fastest_fp32 else None,
                         "fastest_fp32_ms": item.fastest_fp32.median_ms if item.fastest_fp32 else None,
                         "command": reproduce_command(best, repeats) if best else None}))
    notes = ["vs its fp32: the recommendation's speedup over fp32 on the same target and threads; vs fastest fp32: "
             "over the fastest fp32 candidate; all " + CONFIRMED_NOTE.format(repeats=repeats)]
    return Table("advise", title, columns, rows, notes)


def rejudged_table(found: list[RejudgedClaim]) -> Table:
    """The paper's headline claims at each model's recommended recipe; a claim lacking one lists the command."""
    columns = [Column("claim", label=True), Column("fast", "faster-claimed model's recommendation"),
               Column("slow", "the other's"), Column("speedup", kind="ratio"), Column("paper"), Column("verdict")]
    rows = [Row({"claim": item.claim.label, "fast": item.fast.choice.label, "slow": item.slow.choice.label,
                 "speedup": item.speedup, "paper": item.claim.paper_figures or "faster",
                 "verdict": Cell(item.verdict, tone="good" if item.verdict.startswith("reaches") else "bad")})
            for item in found if item.speedup is not None]
    missing = [Lacking(item.claim.label, "needs a recommendation for both models", item.needs)
               for item in found if item.speedup is None]
    return Table("advise-claims", "The paper's headline claims at each model's recommended recipe", columns, rows,
                 ["speedup: the other model's recommended median / the faster-claimed one's (both confirmed)"],
                 missing, "not judged yet:")


def advice_tables(found: list[ModelAdvice], rejudged: list[RejudgedClaim], repeats: int = 3,
                  title: str = "Recommendations") -> list[Table]:
    """Everything one advise result shows (the command, `advise --show` and the dashboard's page alike): each
    model's candidates, the recommendations, and the headline claims judged at them."""
    return [*(candidates_table(item, repeats) for item in found), recommendations_table(found, repeats, title),
            rejudged_table(rejudged)]


def footer(not_screened: list[tuple[str, str, str]], not_searched: list[tuple[str, str, str]],
           recipe_sources: list[tuple[str, str, str]]) -> list[str]:
    """Lines after the tables: where each mixed recipe came from, what was left out and why."""
    lines = [f"mixed recipes for {model} on {target}: {source}" for model, target, source in recipe_sources]
    lines += [f"{model}: {choice}: {why}" for model, choice, why in not_screened]
    reasons: dict[str, list[str]] = {}
    for target, recipe, why in not_searched:
        reasons.setdefault(why, []).append(f"{target} {recipe}")
    lines += [f"not offered: {', '.join(what)}: {why}" for why, what in reasons.items()]
    return lines
