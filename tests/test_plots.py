"""The accuracy-vs-latency figure labels each model once, and no two labels overlap."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from harness.views.plots import accuracy_figure  # noqa: E402

# Latencies shaped like this machine's sweep (docs/findings-amd-epyc.md): five baselines and seven
# variants on four runtimes, where the old figure stacked twenty baseline names on each other.
BASE_MS = {"t8": 3.7, "t12": 7.2, "s12": 8.8, "sa12": 11.2, "sa24": 18.5, "sa36": 27.0, "ma36": 38.0,
           "timm:efficientnet_b0": 3.2, "timm:resnet50": 17.0, "timm:mobileone_s4": 13.0,
           "timm:caformer_s18": 28.0, "timm:convnext_base": 85.0}
RUNTIMES = {"openvino/cpu": 1.0, "onnxruntime/cpu": 1.3, "litert/cpu": 1.6, "torch/cpu": 1.9}


def test_each_model_is_labelled_once_and_no_labels_overlap():
    latency = {(m, t): ms * f for t, f in RUNTIMES.items() for m, ms in BASE_MS.items()}
    fig, labels = accuracy_figure(latency)
    try:
        assert sorted(label.get_text() for label in labels) == sorted(
            m.removeprefix("timm:") if m.startswith("timm:") else f"FastViT-{m.upper()}" for m in BASE_MS)
        renderer = fig.canvas.get_renderer()
        boxes = [label.get_window_extent(renderer) for label in labels]
        overlapping = [(labels[i].get_text(), labels[j].get_text()) for i in range(len(boxes))
                       for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
        assert overlapping == []
        assert len(fig.axes[0].get_legend().get_texts()) == len(RUNTIMES)  # one legend entry per runtime
    finally:
        plt.close(fig)
