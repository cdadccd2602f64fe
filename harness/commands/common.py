"""What every verb of `harness` shares: the options several declare, how a refusal is said (one sentence on stderr,
exit code 2), how some work not ending ok is said (exit 1), the results database opened the way a verb needs it."""
from __future__ import annotations

import errno
import os
import shlex
import sqlite3
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from backends import BACKENDS
from backends.benchmark_model import DELEGATES

from .. import store
from ..measure import plan, sweep
from ..measure import targets as device_targets
from ..spec import Form
from ..views.serialize import Format
from ..views.terminal import skipped

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    console = Console(width=200)  # a table written to a file or pipe keeps its columns readable
err = Console(stderr=True)

# The verbs, grouped in --help by what they do.
MEASURE, INGEST, READ, LAB = "Measure", "Ingest other numbers", "Read results", "Lab"
BackendName = Enum("BackendName", {b: b for b in BACKENDS}, type=str)
Delegate = Enum("Delegate", {d: d for d in DELEGATES}, type=str)
CompileMode = Enum("CompileMode", {m: m for m in ("default", "reduce-overhead", "max-autotune")}, type=str)
SweepProtocol = Enum("SweepProtocol", {p: p for p in ("claims", "paper")}, type=str)
CompareMetric = Enum("CompareMetric", {m: m for m in ("latency", "load", "memory", "size")}, type=str)
ClaimKind = Enum("ClaimKind", {k: k for k in ("latency", "size")}, type=str)

# Options several commands share, declared once.
DbOption = Annotated[Optional[str], typer.Option(
    "--db", help="SQLAlchemy URL or SQLite path (default: $HARNESS_DB or ./results.db)")]
FormatOption = Annotated[Format, typer.Option(
    "--format", help="table (rounded, for a terminal), json or csv (every column, unrounded)")]
CacheOption = Annotated[Path, typer.Option("--cache", help="artifact cache directory")]
CalibrationOption = Annotated[Optional[Path], typer.Option(
    "--calibration", help="int8: a folder of images to calibrate on (default: photographs that scikit-image and "
    "matplotlib ship)")]
KeepFloatOption = Annotated[Optional[list[str]], typer.Option(
    "--keep-float", help="int8: a mixed recipe, this op class left in float by each runtime's quantizer "
    "(repeatable; e.g. conv_dw_7x7; the classes are harness.opclass's)")]
ThreadsOption = Annotated[Optional[int], typer.Option(
    "--threads", min=1, help="threads per runtime (default: all cores; on a phone, 4)")]
BackendsOption = Annotated[Optional[list[BackendName]], typer.Option("--backend", help="only these backends "
                                                                                      "(repeatable)")]
DeviceOption = Annotated[str, typer.Option("--device", help=device_targets.DEVICE_HELP)]
FormOption = Annotated[Form, typer.Option("--form", help="train, reparam (or both, for run)")]
DelegateOption = Annotated[Delegate, typer.Option("--delegate", help="LiteRT delegate on Android phones")]

NO_RUNS = "no runs yet; `harness run --device cpu` makes some"


def say_error(message: str) -> None:
    """A refusal's one sentence on stderr."""
    err.print(f"[red]error:[/red] {escape(message)}")


def fail(message: str) -> NoReturn:
    say_error(message)
    raise typer.Exit(2)


def disk_full(exc: BaseException) -> str | None:
    """What ran out of room when `exc`, or an error that led to it, is a full disk: the OS's ENOSPC or EDQUOT,
    SQLite's SQLITE_FULL, PostgreSQL's disk_full (SQLSTATE 53100), each possibly wrapped (SQLAlchemy raises its
    DBAPIError from the driver's, so the driver's error is on the chain); else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or getattr(exc, "sqlstate", None) == "53100":
            return f"the results database: {str(exc).splitlines()[0]}"
        exc = exc.__cause__ or exc.__context__
    return None


DISK_FULL = ("out of disk space ({}); what was stored before it is kept. Free some space (an artifact cache, "
             "--cache, may be emptied: what it lacks is rebuilt) and run the command again")


def open_db(db: Optional[str], create: bool = False):
    """The results database; only commands that store runs (create=True) may create one."""
    try:
        return store.open_engine(db, create=create)
    except store.StorageError as exc:
        fail(str(exc))


def open_db_for_runs(db: Optional[str]):
    """The database a sweep stores into, holding the bundled published figures beside the runs (stored once:
    `harness compare` sets them beside the first sweep without another step)."""
    from ..ingest import published as published_numbers

    engine = open_db(db, create=True)
    if added := published_numbers.store_bundled(engine):
        err.print(f"stored {added} published latencies beside your runs, for `harness compare`: "
                  f"{escape(published_numbers.bundled_summary())}")
    return engine


def open_db_with_runs(db: Optional[str]):
    """The results database of a command that has nothing to show without runs."""
    engine = open_db(db)
    if store.count_runs(engine) == 0:
        fail(NO_RUNS)
    return engine


def finished(outcomes: list[str], what: str) -> None:
    """Exit 1, saying how many, when some of the work did not end ok."""
    failed = [s for s in outcomes if s != "ok"]
    if failed:
        counts = ", ".join(f"{failed.count(s)} {s}" for s in dict.fromkeys(failed))
        err.print(f"[red]{len(failed)} of {len(outcomes)} {what} did not end ok[/red] ({counts})")
        raise typer.Exit(1)


def repeat_policy(repeats: str, tolerance: float, max_repeats: int) -> sweep.Repeats:
    if repeats == "auto":
        return sweep.Repeats(None, tolerance, 3, max(max_repeats, 3))
    if not repeats.isdigit() or int(repeats) < 1:
        fail(f"--repeats takes a whole number of at least 1, or auto; got {repeats!r}")
    return sweep.Repeats(int(repeats))


def device_and_threads(device: str, threads: Optional[int]) -> tuple[str, int]:
    try:
        device = device_targets.check_device(device)
        return device, device_targets.threads_for(device, threads)
    except ValueError as exc:
        fail(str(exc))


def checked(call, *args, **kwargs):
    """call(...), with bad input (ValueError) as one sentence and exit 2."""
    try:
        return call(*args, **kwargs)
    except ValueError as exc:
        fail(str(exc))


def names(backends) -> list[str] | None:
    return [b.value for b in backends] if backends else None


def single_form(form: Form, command: str) -> str:
    if form.value == "both":
        fail(f"--form must be train or reparam for {command}")
    return form.value


def command_line() -> str:
    return shlex.join(["harness", *sys.argv[1:]])


def planned(found: plan.Plan, device: str, where: str = "") -> plan.Plan:
    """Say which targets were skipped and why; fail where none is left."""
    for target, reason in found.skipped:
        skipped(err, target, f"{where}{reason}")
    if not found.targets and not where:
        fail(f"no available target on device {device!r}; see `harness devices`")
    return found
