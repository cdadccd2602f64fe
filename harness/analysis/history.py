"""One measurement over time: every valid run of the same model spec on the same target, host, threads and
precision, oldest first, with the runtime versions and harness revision each ran, and the changes beyond the
measured spread marked (a regression: the run's band lies wholly above the previous run's).

A run's band is its median's 95% interval, widened by how far fresh processes of it landed apart where it was
timed in several (`--repeats`): on a shared machine two processes of the same build differ by far more than one
process's interval. A change between runs timed in one process each is marked but unconfirmed."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..spec import model_sort_key
from .claims import run_command
from ..store import SERIES_KEY, Host, Run



@dataclass(frozen=True)
class Series:
    """One measured thing that can have a history; the query string of its history page is its fields."""
    host_id: int
    hostname: str
    model: str
    resolution: int
    batch: int
    form: str
    weights: str
    target: str
    threads: int
    precision: str
    keep_float: str = ""  # a mixed int8 recipe's op classes kept in float
    runs: int = 0
    last: datetime | None = None

    def query(self) -> dict:
        return {k: getattr(self, k) for k in SERIES_KEY}


@dataclass
class Point:
    run_id: int
    started_at: datetime
    median_ms: float
    low_ms: float | None
    high_ms: float | None
    versions: str  # the runtime's versions, "torch 2.14.1"
    revision: str | None  # the harness's git revision
    noisy: bool
    process_spread: float | None = None  # (max - min) / median of its sweep's process medians; None: one process
    change: str | None = None  # "regression" | "improvement" (beyond both runs' bands) | None
    confirmed: bool = False  # the change rests on runs timed in several processes each
    ratio: float | None = None  # median / the previous run's median
    new_versions: bool = False  # the runtime's versions differ from the previous run's


@dataclass
class History:
    series: Series | None
    points: list[Point] = field(default_factory=list)
    confirm_command: str | None = None  # times it again in several processes, where a change needs confirming

    @property
    def regressions(self) -> list[Point]:
        return [p for p in self.points if p.change == "regression"]

    @property
    def unconfirmed(self) -> list[Point]:
        """Changes that rest on a run timed in one process: a rerun with --repeats tells noise from a change."""
        return [p for p in self.points if p.change and not p.confirmed]


def series(engine, min_runs: int = 2, model: str | None = None, host_id: int | None = None,
           limit: int = 500) -> list[Series]:
    """Every series with at least `min_runs` valid runs (counted in SQL), most runs first."""
    criteria = [Run.status == "ok", Run.layer.is_(None), Run.published.is_(False)]
    if model:
        criteria.append(Run.model == model)
    if host_id is not None:
        criteria.append(Run.host_id == host_id)
    key = [getattr(Run, c) for c in SERIES_KEY]
    with Session(engine) as session:
        hosts = {h.id: h.hostname for h in session.scalars(select(Host))}
        rows = session.execute(select(*key, func.count(Run.id), func.max(Run.started_at)).where(*criteria)
                               .group_by(*key).having(func.count(Run.id) >= min_runs)
                               .order_by(func.count(Run.id).desc()).limit(limit)).all()
    found = [Series(row[0], hosts.get(row[0], str(row[0])), *row[1:]) for row in rows]
    return sorted(found, key=lambda s: (model_sort_key(s.model), s.hostname, s.target, s.precision, s.resolution))


def _versions(run: Run) -> str:
    versions = (run.environment or {}).get("versions") or {}
    return ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))


def band(point: Point) -> tuple[float, float] | None:
    """What the run measured its median to be: the median's 95% interval, or, timed in several processes, at
    least the median +- that spread (any process of its sweep could have landed there)."""
    if point.low_ms is None or point.high_ms is None:
        return None
    if not point.process_spread:
        return point.low_ms, point.high_ms
    reach = point.median_ms * point.process_spread
    return min(point.low_ms, point.median_ms - reach), max(point.high_ms, point.median_ms + reach)


def _change(previous: Point, point: Point) -> str | None:
    """Beyond the measured spread: the two runs' bands do not overlap."""
    before, now = band(previous), band(point)
    if before is None or now is None:
        return None
    if now[0] > before[1]:
        return "regression"
    if now[1] < before[0]:
        return "improvement"
    return None


def history(engine, **key) -> History:
    """The valid runs of one series (SERIES_KEY fields as keywords; keep_float "" unless given), oldest first."""
    key.setdefault("keep_float", "")
    missing = [k for k in SERIES_KEY if key.get(k) is None]
    if missing:
        raise ValueError(f"a history needs {', '.join(missing)}")
    with Session(engine) as session:
        host = session.get(Host, key["host_id"])
        runs = list(session.scalars(select(Run).where(
            *(getattr(Run, k) == key[k] for k in SERIES_KEY), Run.status == "ok", Run.layer.is_(None),
            Run.published.is_(False)).order_by(Run.started_at, Run.id)))
        found = History(Series(hostname=host.hostname if host else str(key["host_id"]), runs=len(runs),
                               last=runs[-1].started_at if runs else None, **{k: key[k] for k in SERIES_KEY})
                        if runs else None)
        for run in runs:
            if run.latency_ms is None:
                continue
            point = Point(run.id, run.started_at, run.latency_ms, run.median_ci_low_ms, run.median_ci_high_ms,
                          _versions(run), (run.environment or {}).get("git_revision"), bool(run.noisy),
                          run.process_spread)
            if found.points:
                previous = found.points[-1]
                point.change = _change(previous, point)
                point.confirmed = bool(point.change and previous.process_spread is not None
                                       and point.process_spread is not None)
                point.ratio = point.median_ms / previous.median_ms
                point.new_versions = point.versions != previous.versions
            found.points.append(point)
        if found.unconfirmed:
            last = runs[-1]
            found.confirm_command = run_command(last.device, [last.backend], last.model, last.resolution, last.form,
                                                last.precision, last.batch, f"--threads {last.threads}",
                                                "--repeats auto", keep_float=last.keep_float)
    return found
