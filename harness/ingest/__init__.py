"""Numbers this harness did not time, stored beside its own: vendor tools' logs and ETDumps (`harness import`,
marked imported), and published tables: papers' and model zoos' figures, Qualcomm AI Hub's from qai-hub-models
(`harness published`, marked published, each with its citation)."""
