"""The cross-device view: every model's latest latency on every device and target (measured,
imported, published) side by side, and per device the paper's headline claims as speedups beside
the paper's own figures, so "fast on an iPhone, slower elsewhere" is read off in one look. Where a
claim cannot be computed, which runs it lacks and the command that makes them."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import baselines
from ..spec import model_sort_key
from ..store import PUBLISHED_HOST_PREFIX, Host, Run, latest_runs
from .claims import CLAIMS, Claim

# The paper's speed claims against other architectures (the reparam-vs-train ones are per model) at the resolutions
# this view holds each model at; MA36 (384px) vs NFNet-F1 (320px) is `harness claims`' alone.
HEADLINE = tuple(c for c in CLAIMS if not c.key.startswith("reparam_")
                 and (c.fast_resolution, c.slow_resolution) == (baselines.own_resolution()(c.fast),
                                                                baselines.own_resolution()(c.slow)))


@dataclass(frozen=True)
class Column:
    """One device and target: where a column's latencies come from."""
    host: str
    target: str
    origin: str  # measured | imported | published
    citation: str | None = None
    backend: str = ""
    device: str = ""
    precision: str = "fp32"

    @property
    def device_name(self) -> str:
        """The host, or for a published column the device its source names ("iPhone 12 Pro")."""
        return self.host.removeprefix(PUBLISHED_HOST_PREFIX)

    @property
    def label(self) -> str:
        return f"{self.host} {self.target}" + ("" if self.origin == "measured" else f" ({self.origin})")


@dataclass(frozen=True)
class Missing:
    """A headline claim no speedup can be given for on some columns of one host: the models those columns
    lack, and what would add them (a command for this harness's runs, the reason for other origins)."""
    claim: Claim
    host: str
    origin: str
    targets: tuple[str, ...]
    models: tuple[tuple[str, int], ...]  # (model, resolution) lacking on every one of those targets
    remedy: str

    @property
    def needs(self) -> str:
        """'needs ma36 at 256px and timm:convnext_base at 224px'"""
        return "needs " + " and ".join(f"{name} at {resolution}px" for name, resolution in self.models)


PUBLISHED_HINT = "no published figures in this database: `harness published` adds the bundled ones"


@dataclass(frozen=True)
class Metric:
    """What a comparison's cells hold: one figure of each model's latest valid run."""
    name: str
    unit: str
    kind: str  # the name of its rows in `harness compare --format json`
    of: object  # Run -> float | None


METRICS = {
    "latency": Metric("latency", "ms", "latency_ms", lambda run: comparable_latency(run)),
    "load": Metric("load time", "ms", "load_ms", lambda run: run.load_ms),
    "memory": Metric("the model's own peak memory", "MiB", "memory_mib", lambda run: run.model_peak_mb),
    "size": Metric("artifact size", "MB", "size_mb",
                   lambda run: run.artifact_bytes / 1e6 if run.artifact_bytes else None),
}


def comparable_latency(run: Run) -> float | None:
    """A run's latency as compare sets it beside published figures: for an AI Hub run the service's own estimate
    (estimated_inference_time), the statistic qai-hub-models publishes; for every other run its median."""
    estimate = (run.environment or {}).get("aihub_estimated_ms") if run.origin == "measured" else None
    return estimate if estimate else run.latency_ms


@dataclass
class Comparison:
    columns: list[Column] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    values: dict[tuple[str, Column], float] = field(default_factory=dict)  # of `metric`, per (model, column)
    resolution: dict[str, int] = field(default_factory=dict)
    noisy: set[tuple[str, Column]] = field(default_factory=set)  # (model, column) timed beside other work
    missing: list[Missing] = field(default_factory=list)
    hint: str | None = None  # what else would fill the table (PUBLISHED_HINT)
    published_train: set[tuple[str, str, str]] = field(default_factory=set)  # (host, target, model) timed unfused
    metric: Metric = METRICS["latency"]
    # (model, column) -> the latency `harness predict` gives where the column has no run of it
    # (analysis.predict.add_predictions):
    # shown marked as a prediction, never read by a speedup or a claim
    predicted: dict[tuple[str, Column], float] = field(default_factory=dict)

    def speedup(self, claim: Claim, column: Column) -> float | None:
        """latency(slow) / latency(fast) on one column, where it holds both (claims are about latency)."""
        if self.metric is not METRICS["latency"]:
            return None
        fast, slow = self.values.get((claim.fast, column)), self.values.get((claim.slow, column))
        return slow / fast if fast and slow else None


def latest_fused(session: Session, resolution_of) -> list[Run]:
    """The latest valid run with a latency of each model in its fused form, batch 1, at the resolution
    it is compared at (`resolution_of(model)`), per host, target, threads and precision."""
    return [run for run in latest_runs(session, Run.form == "reparam", Run.batch == 1)
            if run.resolution == resolution_of(run.model) and run.latency_ms]


def fused_latencies(engine, resolution_of) -> dict[tuple[str, str], float]:
    """(model, labelled target) -> the latest valid fused-form latency at batch 1 at the model's own resolution
    (several hosts or thread counts: the newest)."""
    with Session(engine) as session:
        return {(run.model, run.labelled_precise_target): run.latency_ms for run in latest_fused(session, resolution_of)}


def compare(engine, resolution_of, metric: str = "latency") -> Comparison:
    """The latest valid latency (or another METRICS figure) of each model (fused form, batch 1, at its own
    resolution) on each (host, target); where several thread counts or precisions were timed, the newest run."""
    found = Comparison(metric=METRICS[metric])
    with Session(engine) as session:
        hosts = {h.id: h.hostname for h in session.scalars(select(Host))}
        published_any = session.scalar(select(Run.id).where(Run.published.is_(True)).limit(1)) is not None
        # what published tables hold in the training form only (timm's, without --reparam): not "missing"
        found.published_train = {(hosts[h], t, m) for h, t, m in session.execute(select(
            Run.host_id, Run.target, Run.model).where(Run.published.is_(True), Run.form == "train").distinct())}
        columns: dict[tuple, Column] = {}
        for run in latest_fused(session, resolution_of):
            value = found.metric.of(run)
            if value is None:
                continue  # a run that did not record this figure (older, or a log that does not print it)
            column = columns.setdefault((run.host_id, run.target, run.origin, run.precision, run.keep_float), Column(
                hosts[run.host_id], run.precise_target, run.origin, run.citation, run.backend, run.device,
                run.precision))
            found.values[(run.model, column)] = value
            if run.noisy and metric == "latency":  # timed beside other work: its latency, not its size
                found.noisy.add((run.model, column))
            found.resolution[run.model] = run.resolution
    origin_order = {"published": 0, "imported": 1, "measured": 2}
    found.columns = sorted(columns.values(), key=lambda c: (origin_order[c.origin], c.host, c.target))
    found.models = sorted({m for m, _ in found.values}, key=model_sort_key)
    found.missing = missing_claims(found, resolution_of) if metric == "latency" else []
    if metric == "latency" and not published_any:
        found.hint = PUBLISHED_HINT
    return found


def missing_claims(found: Comparison, resolution_of) -> list[Missing]:
    """Per headline claim and host, the columns without a speedup grouped by what they lack."""
    missing = []
    for claim in HEADLINE:
        groups: dict[tuple, list[Column]] = {}
        for column in found.columns:
            if found.speedup(claim, column) is None:
                lacking = tuple((m, resolution_of(m)) for m in (claim.fast, claim.slow)
                                if (m, column) not in found.values)
                key = (column.host, column.origin, column.device, column.precision, lacking)
                groups.setdefault(key, []).append(column)
        for (host, origin, device, precision, lacking), columns in groups.items():
            same_device = [c for c in found.columns
                           if (c.host, c.origin, c.device, c.precision) == (host, origin, device, precision)]
            remedy = _remedy(origin, device, lacking, columns, len(columns) == len(same_device), precision)
            if origin == "published" and all((host, c.target, m) in found.published_train for c in columns
                                             for m, _ in lacking):
                remedy = "published in the training form only: the published record judges that form"
            missing.append(Missing(claim, host, origin, tuple(c.target for c in columns), lacking, remedy))
    return missing


def _remedy(origin: str, device: str, lacking: tuple[tuple[str, int], ...], columns: list[Column],
            every_target: bool, precision: str = "fp32") -> str:
    names = " and ".join(f"{m} at {r}px" for m, r in lacking)
    if origin == "published":
        return "not in the published figures"
    if origin == "imported":
        return f"import a log of {names} from {device} (harness import LOG --tool ... --device {device} --model ...)"
    # models at the resolution `harness run` gives them by default share one command; others need --resolution
    by_resolution: dict[int | None, list[str]] = {}
    for model, resolution in lacking:
        default = resolution == baselines.own_resolution()(model)
        by_resolution.setdefault(None if default else resolution, []).append(model)
    backends = [] if every_target else [f"--backend {b}" for b in dict.fromkeys(c.backend for c in columns)]
    backends += [f"--precision {precision}"] if precision not in ("fp32", "n/a") else []
    return " && ".join(" ".join(["harness run", f"--device {device}", *backends,
                                 *(f"--model {baselines.short_name(m)}" for m in models),
                                 *([f"--resolution {resolution}"] if resolution else [])])
                       for resolution, models in by_resolution.items())
