"""`harness advise`: the fastest way to ship each model on a device, found by a budgeted search over targets,
precision recipes and threads and proven by confirming runs (harness.measure.advise)."""
from __future__ import annotations

import re
from typing import Optional

import typer

from ..analysis.advise import DEFAULT_FLOOR, advice, latest_advice, rejudged_claims
from ..measure import plan
from ..measure.advise import AdviseSettings, advise as search
from ..measure.targets import local_targets, plan_targets
from ..protocol import TimingPolicy
from ..spec import Form
from ..store import recipe_label
from ..views.advise import advice_tables, footer
from ..views.serialize import Format
from ..views.terminal import BudgetProgress, show
from .common import (MEASURE, BackendsOption, CacheOption, CalibrationOption, DbOption, DeviceOption, FormatOption,
                     ThreadsOption, checked, command_line, console, device_and_threads, err, fail, names,
                     open_db_for_runs, open_db_with_runs)

app = typer.Typer()
UNITS = {"s": 1, "m": 60, "h": 3600}


def budget_seconds(text: str) -> float:
    """'15m', '900s', '1.5h' or plain seconds; ValueError in one sentence otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if not found or float(found.group(1)) <= 0:
        raise ValueError(f"--budget takes a duration such as 15m, 900s or 1h; got {text!r}")
    return float(found.group(1)) * UNITS[found.group(2) or "s"]


@app.command(rich_help_panel=MEASURE)
def advise(
    device: DeviceOption = "cpu",
    model: list[str] = typer.Option(None, "--model", help="FastViT variant, baseline or timm:<name> (repeatable; "
                                                         "default t8)"),
    backend: BackendsOption = None,
    resolution: Optional[int] = typer.Option(None, "--resolution", help="square input size (default: the model's)"),
    min_agreement: float = typer.Option(DEFAULT_FLOOR, "--min-agreement", min=0.0, max=1.0, help="the floor a recommended "
                                        "recipe's mean logit cosine similarity with fp32 torch must reach on the "
                                        "held-out photographs; below it a candidate is shown, never chosen"),
    budget: str = typer.Option("15m", "--budget", help="time for the whole search (15m, 900s, 1h): screening may "
                               "take 60%, confirming the rest; the best candidate and its fp32 references are "
                               "always confirmed"),
    keep: int = typer.Option(3, "--keep", min=1, help="screened candidates confirmed per model (besides the fp32 "
                             "runs the recommendation is judged against)"),
    repeats: int = typer.Option(3, "--repeats", min=2, help="fresh processes per confirmed candidate"),
    threads: ThreadsOption = None,
    calibration: CalibrationOption = None,
    weights: str = typer.Option("random:0", "--weights", help="random:<seed> or a checkpoint file"),
    show_only: bool = typer.Option(False, "--show", help="print each model's latest advise session (what the "
                                   "dashboard's Advice page shows), time nothing"),
    db: DbOption = None,
    cache: CacheOption = plan.DEFAULT_CACHE,
    fmt: FormatOption = Format.table,
):
    """Search each model's deployment choices on DEVICE (every target, fp32, int8 and mixed int8 recipes that keep
    slow int8 ops in float, fp16/bf16 where computed, threads), screen them briefly, confirm the best with repeats,
    and print the Pareto front of latency, agreement and memory with the recommendation and the command that
    reproduces it. Every candidate is stored as a run."""
    if show_only:
        return show_latest(db, min_agreement, fmt)
    device, threads = device_and_threads(device, threads)
    seconds = checked(budget_seconds, budget)
    _, specs = checked(plan.model_specs, model or ["t8"], resolution, 1, Form.reparam, weights)
    checked(plan.check, specs, cache, "int8", calibration)
    settings = AdviseSettings(device, threads, TimingPolicy(), plan.JobSettings(threads, TimingPolicy(), cache,
                              calibration=calibration), min_agreement, keep, repeats, seconds, names(backend))
    runnable = local_targets(plan_targets(device, names(backend))[0])
    if not runnable:
        fail(f"harness advise searches the targets this machine runs itself, and device {device!r} offers none "
             "of those here; see `harness devices`")
    engine = open_db_for_runs(db)
    with BudgetProgress(err, seconds, describe) as progress:
        outcome = search(engine, specs, settings, command_line(), on_start=progress.started, on_done=progress.done)
    found = advice(engine, outcome.screen_sweeps, outcome.confirm_sweeps, min_agreement)
    *candidates, summary, claims_at = advice_tables(found, rejudged_claims(found), repeats,
                                                    f"harness advise: {outcome.seconds / 60:.1f} min of a "
                                                    f"{seconds / 60:.0f} min budget, {len(outcome.statuses)} runs")
    summary.footer = footer(outcome.not_screened, outcome.not_searched, outcome.recipe_sources)
    show(console, fmt, *candidates, summary, *([claims_at] if claims_at.rows else []))
    if any(item.recommended is None for item in found):  # the question asked has no answer: say so in the code
        raise typer.Exit(1)


def describe(job) -> str:
    """A job as the progress bar names it: model, target, recipe and threads."""
    return f"{job.describe()} {recipe_label(job.precision, job.keep_float)}, {job.threads} threads"


def show_latest(db, floor: float, fmt: Format) -> None:
    """`harness advise --show`: each model's latest advise session, under `floor`."""
    engine = open_db_with_runs(db)
    found = latest_advice(engine, floor)
    if not found:
        fail("no advise session has confirmed a recommendation in this database; `harness advise --device cpu "
             "--model t8` makes one")
    show(console, fmt, *advice_tables(found, rejudged_claims(found)))
