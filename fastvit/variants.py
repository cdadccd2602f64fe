"""FastViT's design space without torch: the paper's seven variants (Table 2) and configurations of the same
space, named, parsed and checked. Imported wherever a model is only named (the CLI, planning, storing), so naming a
model never loads torch."""
from __future__ import annotations

from dataclasses import dataclass

MIXERS = {"m": "RepMixer", "a": "attention"}  # a stage's token mixer, one letter per stage in a configuration
HEAD_DIM = 32  # the attention's head size: an attention stage's width is a multiple of it


@dataclass(frozen=True)
class Variant:
    """One row of the paper's architecture table (Table 2), or a configuration of the same design space."""

    name: str
    depths: tuple[int, int, int, int]
    widths: tuple[int, int, int, int]
    mlp_ratio: float
    mixers: str = "mmmm"  # per stage: "m" RepMixer, "a" attention (with RepCPE before it); SA/MA variants: "mmma"

    @property
    def config(self) -> str:
        """The configuration as a name: d<depths>-w<widths>-r<mlp ratio>-<mixers>, e.g. t8 is
        d2.2.4.2-w48.96.192.384-r3-mmmm."""
        return (f"d{'.'.join(map(str, self.depths))}-w{'.'.join(map(str, self.widths))}-r{self.mlp_ratio:g}-"
                f"{self.mixers}")

    def attention(self, stage: int) -> bool:
        return self.mixers[stage] == "a"


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("t8", (2, 2, 4, 2), (48, 96, 192, 384), 3),
    Variant("t12", (2, 2, 6, 2), (64, 128, 256, 512), 3),
    Variant("s12", (2, 2, 6, 2), (64, 128, 256, 512), 4),
    Variant("sa12", (2, 2, 6, 2), (64, 128, 256, 512), 4, "mmma"),
    Variant("sa24", (4, 4, 12, 4), (64, 128, 256, 512), 4, "mmma"),
    Variant("sa36", (6, 6, 18, 6), (64, 128, 256, 512), 4, "mmma"),
    Variant("ma36", (6, 6, 18, 6), (76, 152, 304, 608), 4, "mmma"),
)}


def list_models() -> list[str]:
    """Variant names in the paper's order (smallest first)."""
    return list(VARIANTS)


def get_variant(name: str) -> Variant:
    """Look up a variant by `t8` or `fastvit_t8` (any case), or a configuration of the same design space by its
    name (Variant.config, e.g. d2.2.6.2-w64.128.256.512-r3-mmaa); ValueError saying why otherwise. A
    configuration that is a paper variant is that variant."""
    key = str(name).strip().lower().removeprefix("fastvit_")
    if key in VARIANTS:
        return VARIANTS[key]
    if is_config_name(key):
        found = parse_config(key)
        return next((v for v in VARIANTS.values() if v.config == found.config), found)
    raise ValueError(f"unknown FastViT variant {name!r}; choose one of: {', '.join(VARIANTS)}, or a configuration "
                     "d<4 depths>-w<4 widths>-r<mlp ratio>-<4 mixers: m RepMixer, a attention>, e.g. "
                     "d2.2.4.2-w48.96.192.384-r3-mmmm")


def is_config_name(name: str) -> bool:
    """Is `name` spelt as a configuration (d...-w...-r...-...), right or wrong?"""
    key = str(name).strip().lower().removeprefix("fastvit_")
    return key.startswith("d") and "-w" in key


def parse_config(name: str) -> Variant:
    """A configuration name (Variant.config) as a Variant named by its canonical spelling; ValueError saying
    what is wrong."""
    parts = name.strip().lower().split("-")
    if len(parts) != 4 or not (parts[0][:1] == "d" and parts[1][:1] == "w" and parts[2][:1] == "r"):
        raise ValueError(f"FastViT configuration {name!r}: expected d<depths>-w<widths>-r<mlp ratio>-<mixers>, "
                         "e.g. d2.2.4.2-w48.96.192.384-r3-mmmm")
    try:
        depths = tuple(int(d) for d in parts[0][1:].split("."))
        widths = tuple(int(w) for w in parts[1][1:].split("."))
        ratio = float(parts[2][1:])
    except ValueError:
        raise ValueError(f"FastViT configuration {name!r}: depths and widths are whole numbers, the mlp ratio a "
                         "number") from None
    return configuration(depths, widths, ratio, parts[3], name)


def configuration(depths, widths, mlp_ratio: float, mixers: str, name: str | None = None) -> Variant:
    """A configuration of the design space, checked, as a Variant named by its canonical spelling (Variant.config);
    ValueError saying what is wrong (`name`: how the caller spelt it, for the message)."""
    depths, widths = tuple(depths), tuple(widths)
    problems = []
    if len(depths) != 4 or len(widths) != 4 or len(mixers) != 4:
        problems.append("four stages: four depths, four widths, four mixers")
    if any(d < 1 for d in depths) or any(w < 1 for w in widths) or not mlp_ratio > 0:
        problems.append("depths, widths and the mlp ratio are positive")
    if set(mixers) - set(MIXERS):
        problems.append("a mixer is m (RepMixer) or a (attention)")
    if not problems:
        if any(widths[i] % widths[i - 1] for i in range(1, 4)):
            problems.append("each width a multiple of the one before (the downsampling conv is grouped by the "
                            "stage's input width)")
        if any(widths[i] % HEAD_DIM for i in range(4) if mixers[i] == "a"):
            problems.append(f"an attention stage's width a multiple of {HEAD_DIM} (the head size)")
    config = Variant("", depths, widths, mlp_ratio, mixers).config
    if problems:
        raise ValueError(f"FastViT configuration {name or config!r}: " + "; ".join(problems))
    return Variant(config, depths, widths, mlp_ratio, mixers)
