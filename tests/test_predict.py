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


def test_a_model_splits_into_kernels_that_add_up_to_it():
    import pytest

    from harness.measure.flops import class_flops
    from harness.predict.kernels import model_kernels
    from harness.spec import ModelSpec, example_input

    spec = ModelSpec("d1.2.3.2-w32.64.128.256-r3-mmaa", 128)
    model = spec.build()
    kernels = model_kernels(spec, model)
    assert sum(k.flops * k.count for k in kernels) == sum(class_flops(model, example_input(spec)).values())
    blocks = {kind: sum(k.count for k in kernels if k.kind == kind) for kind in ("repmixer_block", "attention_block")}
    assert blocks == {"repmixer_block": 3, "attention_block": 5}  # every block, the same shape counted once
    by_path = {k.path: k for k in kernels}
    assert by_path["stages.2.blocks.0"].signature == "attention_block 128->128 h384 @1x128x8x8"
    assert by_path["stages.2.pos_emb"].kind == "rep_cpe" and by_path["stages.1.downsample"].channels_out == 64
    assert by_path["head"].channels_out == 1000 and by_path["stem"].size == 128
    with pytest.raises(ValueError, match="a baseline has none of them"):
        model_kernels(ModelSpec("mobileone_s4"))
