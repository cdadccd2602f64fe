"""harness predict: the architectures it is judged on, the kernels a model splits into, the fit and its use."""
from __future__ import annotations

import fastvit
from harness.predict import space


def test_sampled_architectures_are_distinct_valid_new_and_repeatable():
    sampled = space.sample_models(120, seed=3)
    configs = [c for c, _ in sampled]
    assert len(set(configs)) == 120 and sampled == space.sample_models(120, seed=3)
    assert sampled != space.sample_models(120, seed=4)
    paper = {v.config for v in fastvit.VARIANTS.values()}
    for config, resolution in sampled:
        variant = fastvit.get_variant(config)  # valid: it parses, and is no paper variant
        assert variant.name == config and config not in paper and resolution in space.RESOLUTIONS
    assert {c.rsplit("-", 1)[1] for c in configs} == set(space.MIXERS)
