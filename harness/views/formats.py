"""Every number the views print, formatted in one place: a column's kind names its format here, and the
terminal, markdown and web renderers all call `text()`. JSON and CSV carry the raw values instead."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

NO_VALUE = "—"
MEAN_ONLY = "*"  # after a latency that is a mean: the vendor tool reported no median


@dataclass(frozen=True)
class Interval:
    """A value with its 95% interval, shown as 'value (low-high)'."""
    value: float | None
    low: float | None = None
    high: float | None = None


def ms(value: float | None, digits: int = 2) -> str:
    return NO_VALUE if value is None else f"{value:.{digits}f}"


def share(value: float | None, digits: int = 0) -> str:
    """A fraction as a percentage (0.25 -> '25%')."""
    return NO_VALUE if value is None else f"{value:.{digits}%}"


def signed_share(value: float | None, digits: int = 1) -> str:
    """A relative difference with its sign (0.031 -> '+3.1%')."""
    return NO_VALUE if value is None else f"{value:+.{digits}%}"


def ratio(value: float | None, digits: int = 2) -> str:
    """A speedup or a factor ('1.50x'); zero and None have none."""
    return NO_VALUE if not value else f"{value:.{digits}f}x"


def cosine(value: float | None, digits: int = 4) -> str:
    return NO_VALUE if value is None else f"{value:.{digits}f}"


def figure(value: float | None, digits: int = 3) -> str:
    """A load time or a size: three significant figures are all these ever hold."""
    return NO_VALUE if value is None else f"{value:.{digits}g}" if value < 100 else f"{value:.0f}"


def decimal(value: float | None, digits: int = 2) -> str:
    return NO_VALUE if value is None else f"{value:.{digits}f}"


def scientific(value: float | None, digits: int = 1) -> str:
    return NO_VALUE if value is None else f"{value:.{digits}e}"


def count(value: int | None, digits: int = 0) -> str:
    return NO_VALUE if value is None else str(value)


def compile_seconds(cold_ms: float | None, warm_ms: float | None = None, digits: int = 1) -> str:
    """torch.compile's cold (and warm) compile time, in seconds: '41.2 / 3.1'."""
    if cold_ms is None:
        return NO_VALUE
    return f"{cold_ms / 1e3:.{digits}f}" + (f" / {warm_ms / 1e3:.{digits}f}" if warm_ms is not None else "")


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else NO_VALUE


def text(value, kind: str = "text", digits: int | None = None) -> str:
    """A cell's value as the views show it, by its column's kind (and the column's digits, where it sets some)."""
    if isinstance(value, Interval):
        shown = text(value.value, kind, digits)
        if value.value and value.low is not None and value.high is not None:
            bound = FORMATS["decimal"]
            shown += f" ({bound(value.low, 2)}-{bound(value.high, 2)})"
        return shown
    if kind == "pair":  # processes behind two sides: '3+3'
        return NO_VALUE if not value or not value[0] else "+".join(str(v) for v in value)
    if kind == "compile":
        return compile_seconds(*value) if value else NO_VALUE
    if kind == "mean_ms":
        return ms(value, digits or 2) + MEAN_ONLY
    if kind == "range":  # (low, high): '9.90-10.10'
        return NO_VALUE if not value else f"{decimal(value[0], digits or 2)}-{decimal(value[1], digits or 2)}"
    if kind == "part":  # (ms, share of the whole): '3.00 (75%)'
        return NO_VALUE if not value else f"{ms(value[0], digits or 2)} ({share(value[1])})"
    if kind == "layer":  # (ms per call, calls, ms in all, share): '0.120 x6 = 0.72 (12%)'
        if not value or value[0] is None:
            return NO_VALUE
        return f"{ms(value[0], digits or 3)} x{value[1]} = {ms(value[2])} ({share(value[3])})"
    if kind == "claimed_share":  # (counted, claimed): '12.3% (11.0%)'
        return f"{share(value[0], 1)} ({share(value[1], 1)})"
    if kind == "devices":  # names: '2 (RTX 4090, RTX 5090)'
        return f"{len(value)} ({', '.join(value)})" if value else NO_VALUE
    if kind == "processes":  # one process's median, or several: their median, range and count
        if not value:
            return NO_VALUE
        if len(value) == 1:
            return ms(value[0], digits or 2)
        return f"{ms(statistics.median(value), digits or 2)} ({ms(min(value))}-{ms(max(value))}, {len(value)} runs)"
    if kind == "roof":  # (achieved GFLOP/s, % of the host's best GEMM): '123 (45%)'
        return NO_VALUE if not value else f"{value[0]:.0f} ({value[1]:.0f}%)"
    if isinstance(value, list) and kind in FORMATS:  # several of one kind: '1.5x, 2.0x'
        return ", ".join(text(v, kind, digits) for v in value) or NO_VALUE
    if kind == "yes_no":
        return "yes" if value else "no"
    if kind in FORMATS:
        return FORMATS[kind](value) if digits is None else FORMATS[kind](value, digits)
    if value is None or value == "":
        return NO_VALUE if kind != "blank" else ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or NO_VALUE
    return str(value)


FORMATS = {"ms": ms, "share": share, "signed_share": signed_share, "ratio": ratio, "cosine": cosine, "figure": figure, "decimal": decimal,
           "scientific": scientific, "count": count}
# kinds whose cells are numbers: right-aligned in every view
NUMERIC = frozenset(FORMATS) | {"pair", "compile", "mean_ms", "processes", "roof", "range", "part", "layer", "claimed_share"}
