"""Latency predicted before it is measured (`harness predict`): the architectures judged, the kernels a model
splits into, and per-target cost models fitted from the harness's own kernel timings. A prediction is never a
measurement: it is stored and shown apart from runs."""
