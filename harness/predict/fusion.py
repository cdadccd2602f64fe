"""Which compositions a runtime fuses, found by timing, not assumed (nn-Meter's fusion test cases).

Two modules that run one after the other are timed alone and together (harness.measure.layers: path "a+b"),
each net of the runtime's per-call overhead (the empty-model probe). A runtime that runs them as two kernels
takes about as long for both as for each in turn; one that fuses them saves most of the cheaper one (an
activation applied as a convolution's post-op costs almost nothing). So a composition counts as fused when
together saves at least FUSED_SHARE of the cheaper module's time, and more than the three medians' own
uncertainty (their bootstrap confidence intervals), so noise alone does not make a fusion.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..spec import ModelSpec

FUSED_SHARE = 0.5  # of the cheaper module's own time, saved when the two run together


@dataclass(frozen=True)
class Probe:
    """A composition to time: `first` then `second` (module paths, either itself "a+b") in the model `spec`."""
    spec: ModelSpec
    first: str
    second: str


_BLOCKS = ModelSpec("d2.1.1.1-w64.128.256.512-r4-mmmm", 256)  # two RepMixer blocks in its first stage
# FastViT's compositions a runtime may fuse, and one every runtime's documentation says it fuses (ResNet-50's stem
# convolution against its BatchNorm and ReLU, training form), the control a fusion test is judged by. Its second
# part is both, not the ReLU alone: a 0.08 ms ReLU beside a 2.7 ms convolution is within the drift between runs.
PROBES = {
    "conv1x1+gelu": Probe(_BLOCKS, "stages.0.blocks.0.mlp.fc1", "stages.0.blocks.0.mlp.act"),
    "dwconv7x7+conv1x1": Probe(_BLOCKS, "stages.0.blocks.0.mlp.conv", "stages.0.blocks.0.mlp.fc1"),
    "repmixer+repmixer": Probe(_BLOCKS, "stages.0.blocks.0", "stages.0.blocks.1"),
    "conv+bn-relu": Probe(ModelSpec("resnet50", 224, form="train"), "conv1", "bn1+act1"),
}


@dataclass(frozen=True)
class Timed:
    """A median and its confidence interval (ms), as a run's summary gives them."""
    median_ms: float
    low_ms: float
    high_ms: float

    @property
    def half_width(self) -> float:
        return (self.high_ms - self.low_ms) / 2


@dataclass(frozen=True)
class Composition:
    name: str
    first: Timed
    second: Timed
    together: Timed
    overhead_ms: float

    def net(self, timed: Timed) -> float:
        return max(timed.median_ms - self.overhead_ms, 0.0)

    @property
    def saved_ms(self) -> float:
        """What running them together saves over running each alone."""
        return self.net(self.first) + self.net(self.second) - self.net(self.together)

    @property
    def saved_share(self) -> float:
        """The saving as a share of the cheaper module's own time."""
        cheaper = min(self.net(self.first), self.net(self.second))
        return self.saved_ms / cheaper if cheaper > 0 else 0.0

    @property
    def uncertainty_ms(self) -> float:
        return self.first.half_width + self.second.half_width + self.together.half_width

    @property
    def fused(self) -> bool:
        return self.saved_share >= FUSED_SHARE and self.saved_ms > self.uncertainty_ms
