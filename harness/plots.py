"""PNG figures from stored runs (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from .analysis.compare import latest_fused  # noqa: E402
from .analysis.explain import breakdown  # noqa: E402
from .baselines import paper_top1  # noqa: E402
from .opclass import CLASSES  # noqa: E402
from .spec import model_sort_key  # noqa: E402
from .store import Run  # noqa: E402


def _latest_valid(engine, resolution_of) -> dict[tuple[str, str], Run]:
    """(model, target) -> latest valid reparam run at the model's own resolution, batch 1."""
    found = {}
    with Session(engine) as session:
        for run in latest_fused(session, resolution_of):
            found[(run.model, run.labelled_precise_target)] = run  # several hosts or thread counts: the newest
    return found


def _label(model: str) -> str:
    return model.removeprefix("timm:") if model.startswith("timm:") else f"FastViT-{model.upper()}"


def accuracy_vs_latency(engine, out: Path, resolution_of) -> Path:
    """Top-1 (the papers') against measured latency, one line per target, like the paper's Figure 1."""
    fig, _ = accuracy_figure({key: run.latency_ms for key, run in _latest_valid(engine, resolution_of).items()})
    path = out / "accuracy_vs_latency.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
        colour = ax.plot([r[0] for r in fast], [r[1] for r in fast], marker="o", label=f"{target}")[0].get_color()
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


def latency_by_backend(engine, out: Path, resolution_of) -> Path:
    runs = _latest_valid(engine, resolution_of)
    models = sorted({m for m, _ in runs}, key=model_sort_key)
    targets = sorted({t for _, t in runs})
    fig, ax = plt.subplots(figsize=(max(8, len(models) * 1.2), 5))
    width = 0.8 / max(len(targets), 1)
    for i, target in enumerate(targets):
        xs = [j + i * width for j, m in enumerate(models) if (m, target) in runs]
        ys = [runs[(m, target)].latency_ms for m in models if (m, target) in runs]
        ax.bar(xs, ys, width, label=target)
    ax.set_xticks([j + width * (len(targets) - 1) / 2 for j in range(len(models))])
    ax.set_xticklabels([_label(m) for m in models], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("median latency, ms (batch 1)")
    ax.set_title("Latency per model and target (fused form)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    path = out / "latency_by_backend.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def latency_by_device(engine, out: Path, resolution_of) -> Path | None:
    """`harness compare` as a figure: latency per device and target (log scale), one line per model;
    published and imported columns are labelled so."""
    from .analysis.compare import compare

    found = compare(engine, resolution_of)
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
    ax.set_ylabel("latency, ms (log scale; batch 1, fused form)")
    ax.set_title("Latency per device and target (published and imported columns marked)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", axis="y", alpha=0.3)
    path = out / "latency_by_device.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def op_breakdown(engine, out: Path, model: str, resolution: int, device: str) -> Path | None:
    found = breakdown(engine, model, resolution, "reparam", device)
    if not found.targets:
        return None
    targets, rows = found.targets, found.rows
    fig, ax = plt.subplots(figsize=(8, 5))
    bottoms = [0.0] * len(targets)
    colours = plt.cm.tab20.colors  # 20 distinct colours: one per op class of the vocabulary
    for row in rows:
        shares = [c["share"] * 100 if c else 0.0 for c in row["cells"]]
        ax.bar([t["target"] for t in targets], shares, bottom=bottoms, label=row["op_class"],
               color=colours[CLASSES.index(row["op_class"]) % len(colours)])
        bottoms = [b + s for b, s in zip(bottoms, shares)]
    ax.set_ylabel("share of profiled time, %")
    ax.set_title(f"Where {_label(model)} spends its time ({resolution}px, fused)")
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    path = out / f"op_breakdown_{model.replace(':', '_')}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
