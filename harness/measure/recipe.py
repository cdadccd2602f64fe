"""Mixed int8 recipes: an int8 artifact whose quantizer leaves chosen op classes (harness.opclass) in float,
e.g. FastViT's 7x7 depthwise convolutions, whose int8 kernels are slower than the float ones on most CPU
runtimes. A recipe is stored (runs.keep_float, Job.keep_float) as its op classes kept in float, sorted and
comma-joined; "" is full int8, and every other precision."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..opclass import CLASSES, op_class
from ..protocol import LOW_PRECISIONS
from ..store import float_classes

if TYPE_CHECKING:
    from backends.base import KeepFloat


def keep_float_recipe(names: list[str] | None, precision: str) -> str:
    """The stored recipe for `--keep-float` op classes, checked: ValueError, in one sentence, for an unknown class
    or a recipe asked of a precision that quantizes nothing."""
    if not names:
        return ""
    unknown = [name for name in names if name not in CLASSES]
    if unknown:
        raise ValueError(f"--keep-float {unknown[0]}: not an op class (one of {', '.join(CLASSES)})")
    if precision not in LOW_PRECISIONS:
        raise ValueError(f"--keep-float is for int8 recipes; --precision {precision} quantizes nothing")
    return ",".join(sorted(set(names)))


def keeps(keep_float: str) -> KeepFloat | None:
    """What a backend's export calls on each op of its own graph: is its op class kept in float?"""
    if not keep_float:
        return None
    chosen = frozenset(float_classes(keep_float))
    return lambda op_type, kernel, depthwise: op_class(op_type, kernel, depthwise) in chosen

