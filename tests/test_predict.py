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


def test_a_probe_holds_the_kernel_it_was_asked_for():
    from harness.predict.kernels import model_kernels
    from harness.predict.sampling import probe, sample_probes

    cases = [("stem", 40, 96, "stem 3->40 @1x3x96x96"),
             ("patch_embed", 72, 36, "patch_embed 72->144 @1x72x36x36"),
             ("repmixer_block", 100, 13, "repmixer_block 100->100 h300 @1x100x13x13"),
             ("attention_block", 64, 12, "attention_block 64->64 h192 @1x64x12x12"),
             ("rep_cpe", 96, 20, "rep_cpe 96->96 @1x96x20x20"),
             ("final_conv", 416, 3, "final_conv 416->832 @1x416x3x3"),
             ("classifier", 384, 2, "classifier 384->1000 @1x384x2x2")]
    for kind, width, size, signature in cases:
        found = probe(kind, width, size)
        kernel = {k.path: k for k in model_kernels(found.spec)}[found.path]
        assert kernel.signature == signature and kernel.kind == found.kind == kind
    sampled = sample_probes(40, seed=2)
    assert len({(p.spec, p.path) for p in sampled}) == 40 and sampled == sample_probes(40, seed=2)
    assert {p.kind for p in sampled} == {"stem", "patch_embed", "rep_cpe", "repmixer_block", "attention_block",
                                          "final_conv", "classifier"}


def test_a_kernel_is_timed_alone_like_a_layer(tmp_path):
    """The worker exports the block at its path, feeds it the activation it gets in the model, checks parity."""
    from harness.measure.child import measure_in_child
    from harness.predict.sampling import probe
    from harness.protocol import Job, TimingPolicy
    from harness.spec import Target

    found = probe("repmixer_block", 32, 8)
    job = Job(found.spec, Target("onnxruntime", "cpu"), 1, TimingPolicy(1, 0, 3, 0), str(tmp_path / "cache"),
              layer=found.path, layer_signature="repmixer_block 32->32 h96 @1x32x8x8", layer_count=1)
    result = measure_in_child(job, 300)
    assert result.status == "ok", result.error
    assert result.environment["layer_path"] == found.path and result.parity_rel < 1e-4
    assert result.environment["layer_flops"] > 0 and len(result.samples_ns) >= 3
