"""PNG figures of analysis results (matplotlib, no display needed), in the palette the dashboard uses."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..analysis.compare import Comparison  # noqa: E402
from ..analysis.explain import Breakdown  # noqa: E402
from ..baselines import paper_top1  # noqa: E402
from ..spec import model_sort_key  # noqa: E402
from .palette import op_class_colour, target_colour  # noqa: E402


def _label(model: str) -> str:
    return model.removeprefix("timm:") if model.startswith("timm:") else f"FastViT-{model.upper()}"


def save(fig, path: Path) -> Path:
    """Lay out, write at the one resolution every figure uses, and free the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def accuracy_vs_latency(latency_ms: dict[tuple[str, str], float], out: Path) -> Path:
    """Top-1 (the papers') against measured latency, one line per target, like the paper's Figure 1."""
    fig, _ = accuracy_figure(latency_ms)
    return save(fig, out / "accuracy_vs_latency.png")


def accuracy_figure(latency_ms: dict[tuple[str, str], float]):
    """(figure, model labels) for {(model, target): latency}. Every point of a model sits at its one
    published top-1, so each model is labelled once, left of its fastest point; adjustText moves
    labels apart where rows are close (SA36 and CAFormer-S18 share 83.6%)."""
    from adjustText import adjust_text

    targets = sorted({t for _, t in latency_ms})
    fig, ax = plt.subplots(figsize=(8, 5.5))
    points = []
    for target in targets:
        rows = sorted((ms, paper_top1(m), m) for (m, t), ms in latency_ms.items()
                      if t == target and paper_top1(m) is not None)
        fast = [r for r in rows if not r[2].startswith("timm:")]
        colour = target_colour(target)
        ax.plot([r[0] for r in fast], [r[1] for r in fast], marker="o", label=f"{target}", color=colour)
        baselines = [r for r in rows if r[2].startswith("timm:")]
        ax.scatter([r[0] for r in baselines], [r[1] for r in baselines], marker="s", color=colour)
        points += rows
    labels = []
    for model in dict.fromkeys(m for _, _, m in sorted(points)):
        ms, top1 = min((ms, top1) for ms, top1, m in points if m == model)
        labels.append(ax.text(ms / 1.06, top1, _label(model), fontsize=7, ha="right", va="center"))
    ax.set_xscale("log")
    ax.set_xlabel("median latency, ms (log scale, batch 1)")
    ax.set_ylabel("ImageNet top-1, % (as published)")
    ax.set_title("Accuracy vs latency: FastViT (lines) and baselines (squares) per target")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", title="target", title_fontsize=8)
    fig.tight_layout()
    if labels:
        adjust_text(labels, ax=ax, x=[p[0] for p in points], y=[p[1] for p in points], only_move={"text": "xy"},
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5})
    return fig, labels


def latency_by_backend(latency_ms: dict[tuple[str, str], float], out: Path) -> Path:
    models = sorted({m for m, _ in latency_ms}, key=model_sort_key)
    targets = sorted({t for _, t in latency_ms})
    fig, ax = plt.subplots(figsize=(max(8, len(models) * 1.2), 5))
    width = 0.8 / max(len(targets), 1)
    for i, target in enumerate(targets):
        xs = [j + i * width for j, m in enumerate(models) if (m, target) in latency_ms]
        ys = [latency_ms[(m, target)] for m in models if (m, target) in latency_ms]
        ax.bar(xs, ys, width, label=target, color=target_colour(target))
    ax.set_xticks([j + width * (len(targets) - 1) / 2 for j in range(len(models))])
    ax.set_xticklabels([_label(m) for m in models], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("median latency, ms (batch 1)")
    ax.set_title("Latency per model and target (fused form)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return save(fig, out / "latency_by_backend.png")


def latency_by_device(found: Comparison, out: Path) -> Path | None:
    """`harness compare` as a figure: latency per device and target (log scale), one line per model;
    published and imported columns are labelled so."""
    if not found.columns:
        return None
    fig, ax = plt.subplots(figsize=(max(8, len(found.columns) * 1.1), 5.5))
    xs = range(len(found.columns))
    for model in found.models:
        points = [(x, found.values[(model, c)]) for x, c in zip(xs, found.columns) if (model, c) in found.values]
        baseline = model.startswith("timm:")
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="s" if baseline else "o",
                linestyle="--" if baseline else "-", label=_label(model))
    ax.set_yscale("log")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([c.label.replace(" ", "\n", 1) for c in found.columns], rotation=30, ha="right", fontsize=7)
    for tick, column in zip(ax.get_xticklabels(), found.columns):
        tick.set_color(target_colour(column.target))
    ax.set_ylabel("latency, ms (log scale; batch 1, fused form)")
    ax.set_title("Latency per device and target (published and imported columns marked)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", axis="y", alpha=0.3)
    return save(fig, out / "latency_by_device.png")


def op_breakdown(found: Breakdown, out: Path, model: str, resolution: int) -> Path | None:
    if not found.targets:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    bottoms = [0.0] * len(found.targets)
    for row in found.rows:
        shares = [c["share"] * 100 if c else 0.0 for c in row["cells"]]
        ax.bar([t["target"] for t in found.targets], shares, bottom=bottoms, label=row["op_class"],
               color=op_class_colour(row["op_class"]))
        bottoms = [b + s for b, s in zip(bottoms, shares)]
    ax.set_ylabel("share of profiled time, %")
    ax.set_title(f"Where {_label(model)} spends its time ({resolution}px, fused)")
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return save(fig, out / f"op_breakdown_{model.replace(':', '_')}.png")
