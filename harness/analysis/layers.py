"""Reading `harness layers`: per model and target, each distinct layer's time alone (less the
runtime's empty-model overhead) times how often the model runs it, its share, the sum against the
whole model's latency, and the outliers: layers a target runs far slower than the best target on
the same host."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from ..spec import device_matches
from ..opclass import OVERHEAD_SIGNATURE, signature_class
from ..store import Run, latest_runs

OUTLIER_RATIO = 2.0  # a layer this many times slower than on the host's best target is named


@dataclass
class LayerRow:
    signature: str
    op_class: str
    count: int
    flops: int | None
    ms: dict[str, float] = field(default_factory=dict)  # target -> median ms per call, as timed

    def net_ms(self, target: str, overhead: dict[str, float]) -> float | None:
        """Per call, less the target's per-call overhead (never below zero)."""
        if target not in self.ms:
            return None
        return max(self.ms[target] - overhead.get(target, 0.0), 0.0)


@dataclass
class Outlier:
    signature: str
    op_class: str
    target: str
    best_target: str
    ratio: float  # net time on target / on best_target
    share: float  # of the sum of layers on target
    gflops: float | None


@dataclass(frozen=True)
class OutlierGroup:
    """The outliers of one op class on one target against the same best target."""
    target: str
    op_class: str
    best_target: str
    ratios: tuple[float, ...]
    share: float  # of the sum of layers on target, together


@dataclass
class LayerTable:
    targets: list[str] = field(default_factory=list)
    rows: list[LayerRow] = field(default_factory=list)
    overhead: dict[str, float] = field(default_factory=dict)  # target -> ms per call of the empty model
    whole_ms: dict[str, float] = field(default_factory=dict)  # target -> the whole model's latest latency

    def total_ms(self, row: LayerRow, target: str) -> float | None:
        net = row.net_ms(target, self.overhead)
        return net * row.count if net is not None else None

    def sum_ms(self, target: str) -> float:
        return sum(t for row in self.rows if (t := self.total_ms(row, target)) is not None)

    def share(self, row: LayerRow, target: str) -> float | None:
        total, whole = self.total_ms(row, target), self.sum_ms(target)
        return total / whole if total is not None and whole else None

    def ratio_to_whole(self, target: str) -> float | None:
        """Sum of layers / whole-model latency: below 1 the whole model gains from fusion across
        layers (or layers alone pay less overhead); above 1 layers alone lose what runs between them."""
        whole = self.whole_ms.get(target)
        return self.sum_ms(target) / whole if whole else None

    def by_class(self, target: str) -> dict[str, float]:
        """ms per inference of each op class on `target`, summed over its layers (x count)."""
        found: dict[str, float] = {}
        for row in self.rows:
            if (total := self.total_ms(row, target)) is not None:
                found[row.op_class] = found.get(row.op_class, 0.0) + total
        return found

    def outliers(self) -> list[Outlier]:
        found = []
        for row in self.rows:
            positive = {t: n for t in self.targets if (n := row.net_ms(t, self.overhead))}
            if len(positive) < 2:
                continue
            best = min(positive, key=positive.get)
            for target, net in positive.items():
                ratio = net / positive[best]
                if ratio >= OUTLIER_RATIO:
                    gflops = row.flops / (net * 1e6) if row.flops else None
                    found.append(Outlier(row.signature, row.op_class, target, best, ratio,
                                         self.share(row, target) or 0.0, gflops))
        return sorted(found, key=lambda o: -o.share)

    def outlier_groups(self, min_share: float = 0.03, most: int = 6) -> list[OutlierGroup]:
        """Outliers per (target, op class, best target), largest share of that target's time first: those
        together at least `min_share` of it, the `most` largest."""
        groups: dict[tuple[str, str, str], list[Outlier]] = {}
        for o in self.outliers():
            groups.setdefault((o.target, o.op_class, o.best_target), []).append(o)
        found = [OutlierGroup(*key, tuple(o.ratio for o in members), sum(o.share for o in members))
                 for key, members in groups.items()]
        return sorted((g for g in found if g.share >= min_share), key=lambda g: -g.share)[:most]


def layer_table(engine, model: str, resolution: int, form: str, device: str, precision: str = "fp32") -> LayerTable:
    """The latest valid layer runs of one model spec in one precision on each target of `device` (newest host)."""
    found = LayerTable()
    rows: dict[str, LayerRow] = {}
    with Session(engine) as session:
        spec = (Run.model == model, Run.resolution == resolution, Run.form == form, Run.batch == 1,
                Run.precision == precision, Run.keep_float == "")  # layers are timed in full recipes only
        for run in latest_runs(session, *spec, layers=True):
            if not device_matches(device, run.device):
                continue
            if run.target not in found.targets:
                found.targets.append(run.target)
            if run.layer == OVERHEAD_SIGNATURE:
                found.overhead[run.target] = run.latency_ms
                continue
            row = rows.setdefault(run.layer, LayerRow(run.layer, signature_class(run.layer), run.layer_count or 0,
                                                      (run.environment or {}).get("layer_flops")))
            row.ms[run.target] = run.latency_ms
        for run in latest_runs(session, *spec):
            if run.target in found.targets:
                found.whole_ms[run.target] = run.latency_ms
    found.targets.sort()
    found.rows = sorted(rows.values(), key=lambda r: -max(found.total_ms(r, t) or 0.0 for t in found.targets))
    return found
