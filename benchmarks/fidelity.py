"""What both fidelity benchmarks share: harness and vendor tool timed in alternating order, round
after round, and the ratio of their per-round medians with a bootstrap interval."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from harness.measure.child import measure_in_child
from harness.protocol import Job, RunResult
from harness.stats import ratio_of_medians


def alternate(job: Job, rounds: int, vendor: Callable[[RunResult], object]
              ) -> Iterator[tuple[int, RunResult, object]]:
    """(round, the harness's result, the vendor's) per round; A B, B A, ...: whichever runs first in a
    round gets no systematic advantage. `vendor` gets the harness's latest result (its artifact):
    round 0 runs the harness first, so there always is one."""
    result = None
    for r in range(rounds):
        if r % 2:
            theirs = vendor(result)
        result = measure_in_child(job, timeout_s=900)
        if result.status != "ok":
            raise SystemExit(f"harness run failed: {result.error}\n{result.log or ''}")
        if not r % 2:
            theirs = vendor(result)
        yield r, result, theirs


def ratio_line(what: str, ours: list[float], theirs: list[float]) -> str:
    ratio, low, high = ratio_of_medians(ours, theirs)
    return (f"{what} = {ratio:.3f} (95% CI {low:.3f}-{high:.3f}; per round: "
            f"{', '.join(f'{a / b:.3f}' for a, b in zip(ours, theirs))})")
