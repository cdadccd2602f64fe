"""What a lower precision buys and costs: per target, the int8 (or half-precision) run beside the fp32 run of the
same model spec, with its agreement with fp32 torch and the share of the model the runtime really computes in
int8 (and which op classes it keeps in float). Computed once here; `harness coverage`, `explain` and
`findings` render it."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..spec import model_sort_key
from ..store import Host, Run, latest_runs, precision_coverage, recipe_label
from .coverage import CoverageSplit, split

COLUMNS = ("backend", "precision", "keep_float", "op_class", "op_type", "low_nodes", "float_nodes", "low_flops",
           "float_flops")

# the op classes whose place in int8 or float the question turns on (FastViT's token mixers and CPE)
WATCHED = ("conv_dw_7x7", "conv_dw_3x3", "attention_matmul", "linear", "conv_pointwise")


class BackendCoverage(CoverageSplit):
    """One backend's low-precision artifact of one model spec: `detail` is its recipe (the precision, and the op
    classes a mixed int8 recipe kept in float: store.recipe_label); inside: int8."""

    @property
    def precision(self) -> str:
        return self.detail

    @property
    def kept_float(self) -> list[str]:
        return self.outside_classes


def coverage(engine, model: str, resolution: int, form: str) -> list[BackendCoverage]:
    """Every stored low-precision coverage of one model spec, per backend and recipe."""
    with Session(engine) as session:
        rows = [{c: getattr(r, c) for c in COLUMNS} for r in precision_coverage(session, model, resolution, form)]
    for row in rows:
        row["recipe"] = recipe_label(row["precision"], row["keep_float"])
    return [BackendCoverage(s.backend, s.detail, s.classes, s.ops) for s in split(rows, "recipe", "low", "float")]


@dataclass(frozen=True)
class PrecisionEffect:
    """A low-precision run beside the fp32 run of the same spec on the same target, host and threads."""
    host: str
    device: str
    target: str
    model: str
    resolution: int
    precision: str
    fp32_ms: float | None
    low_ms: float | None
    status: str  # of the low-precision run: ok, or inaccurate (below the agreement floor)
    agreement_top1: float | None
    agreement_cosine: float | None
    flop_share: float | None  # of the artifact's FLOPs computed in int8 (int8 only)
    kept_float: tuple[str, ...]  # op classes with nodes left in float

    @property
    def speedup(self) -> float | None:
        return self.fp32_ms / self.low_ms if self.fp32_ms and self.low_ms else None


def effects(engine) -> list[PrecisionEffect]:
    """Every latest low-precision run (whole model, batch 1, fused form, any status but failures) beside its fp32
    twin, with its agreement and int8 coverage."""
    found = []
    with Session(engine) as session:
        hosts = {h.id: h.hostname for h in session.scalars(select(Host))}
        runs = [r for r in latest_runs(session, Run.form == "reparam", Run.batch == 1, Run.published.is_(False),
                                       valid_only=False) if r.status in ("ok", "inaccurate")]
        fp32 = {(r.host_id, r.target, r.threads, r.model, r.resolution, r.weights): r for r in runs
                if r.precision == "fp32" and r.status == "ok"}
        covered: dict[tuple, BackendCoverage] = {}
        for run in runs:
            if run.precision == "fp32":
                continue
            twin = fp32.get((run.host_id, run.target, run.threads, run.model, run.resolution, run.weights))
            key = (run.model, run.resolution, run.backend, run.recipe)
            if key not in covered:
                covered.update({(run.model, run.resolution, c.backend, c.precision): c
                                for c in coverage(engine, run.model, run.resolution, "reparam")})
            cover = covered.get(key)
            found.append(PrecisionEffect(
                hosts.get(run.host_id, str(run.host_id)), run.device, run.target, run.model, run.resolution,
                run.recipe, twin.latency_ms if twin else None, run.latency_ms, run.status, run.agreement_top1,
                run.agreement_cosine, cover.flop_share if cover else None,
                tuple(cover.kept_float) if cover else ()))
    return sorted(found, key=lambda e: (e.host, e.device, model_sort_key(e.model), e.precision, e.target))


@dataclass(frozen=True)
class VerdictUnderPrecision:
    """A paper claim checked on one target both in fp32 and in a lower precision (harness.analysis.claims)."""
    claim: str
    host: str
    target: str  # without the precision
    precision: str
    fp32: str  # verdict
    fp32_speedup: float | None
    low: str
    low_speedup: float | None

    @property
    def changed(self) -> bool:
        return self.fp32 != self.low


def verdicts_by_precision(checks) -> list[VerdictUnderPrecision]:
    """Claims with a verdict in fp32 and in another precision on the same host, target, threads and batch."""
    decided = [c for c in checks if c.verdict != "not enough data"]
    fp32 = {(c.claim.key, c.host, c.target, c.threads, c.batch): c for c in decided if c.precision == "fp32"}
    found = []
    for check in decided:
        if check.precision in ("fp32", "n/a"):
            continue
        plain = check.target.removesuffix(f" {check.precision}")
        twin = fp32.get((check.claim.key, check.host, plain, check.threads, check.batch))
        if twin is not None:
            found.append(VerdictUnderPrecision(check.claim.key, check.host, plain, check.precision, twin.verdict,
                                               twin.speedup, check.verdict, check.speedup))
    return found
