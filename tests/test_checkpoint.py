"""Checkpoint loading: Apple's layout (unfused and fused), file formats, and clear refusals."""
from __future__ import annotations

import re

import pytest
import torch

import fastvit
from helpers import image, rel_diff


def to_apple_layout(state: dict, variant: str) -> dict:
    """Rename our (timm's) keys the way Apple's ml-fastvit names them; written from its model file.

    Apple keeps one flat `network` list: per stage [downsampler (stages 1-3)], [RepCPE], blocks.
    """
    attention = variant.startswith(("sa", "ma"))
    network, index = {}, 0
    for s in range(4):
        if s > 0:
            network[f"stages.{s}.downsample."] = index
            index += 1
        if attention and s == 3:
            network[f"stages.{s}.pos_emb."] = index
            index += 1
        network[f"stages.{s}.blocks."] = index
        index += 1
    out = {}
    for key, value in state.items():
        for ours, i in network.items():
            if key.startswith(ours):
                key = f"network.{i}." + key[len(ours):]
                break
        key = re.sub(r"^stem\.", "patch_embed.", key)
        key = re.sub(r"^final_conv\.", "conv_exp.", key)
        key = key.replace("head.fc.", "head.")
        key = key.replace("conv_kxk", "rbr_conv").replace("conv_scale", "rbr_scale").replace("identity", "rbr_skip")
        key = key.replace("large_conv", "lkb_origin").replace(".mlp.", ".convffn.").replace("pos_enc", "pe")
        key = key.replace("se.fc1", "se.reduce").replace("se.fc2", "se.expand")
        key = key.replace(".gamma", "")
        if re.match(r"network\.\d+\.proj\.0\.reparam_conv", key):  # Apple's fused large-kernel conv
            key = key.replace("reparam_conv", "lkb_reparam")
        out[key] = value
    return out


@pytest.mark.parametrize("name", ["t8", "sa12"])
def test_apple_unfused_and_fused_checkpoints_load_with_same_outputs(name):
    source = fastvit.randomize_(fastvit.create_model(name), seed=3).eval()
    fused_source = fastvit.reparameterize(source)
    apple_unfused = to_apple_layout(source.state_dict(), name)
    apple_fused = to_apple_layout(fused_source.state_dict(), name)
    assert any(k.startswith("network.") for k in apple_unfused)
    assert any("lkb_reparam" in k for k in apple_fused)
    assert any(k.endswith("token_mixer.layer_scale") for k in apple_unfused)

    unfused = fastvit.load_checkpoint(fastvit.create_model(name), {"state_dict": apple_unfused}).eval()
    fused = fastvit.load_checkpoint(fastvit.create_model(name, inference_mode=True), apple_fused).eval()
    x = image()
    with torch.no_grad():
        expected = source(x)
        assert torch.equal(unfused(x), expected)
        assert rel_diff(expected, fused(x)) <= 1e-4
        assert torch.equal(fused(x), fused_source(x))


@pytest.fixture(scope="module")
def t8_state():
    return fastvit.randomize_(fastvit.create_model("t8"), seed=1).state_dict()


@pytest.mark.parametrize("fmt", ["pth", "pth.tar", "safetensors", "module_prefix"])
def test_file_formats(tmp_path, t8_state, fmt):
    path = tmp_path / f"ckpt.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in t8_state.items()}, str(path))
    elif fmt == "pth.tar":
        torch.save({"state_dict": t8_state, "epoch": 300}, path)
    elif fmt == "module_prefix":
        torch.save({"model": {f"module.{k}": v for k, v in t8_state.items()}}, path)
    else:
        torch.save(t8_state, path)
    model = fastvit.load_checkpoint(fastvit.create_model("t8"), path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in t8_state.items())


def test_missing_batchnorm_counters_are_tolerated(t8_state):
    trimmed = {k: v for k, v in t8_state.items() if not k.endswith("num_batches_tracked")}
    fastvit.load_checkpoint(fastvit.create_model("t8"), trimmed)


def _error(model, source) -> str:
    with pytest.raises(fastvit.CheckpointError) as info:
        fastvit.load_checkpoint(model, source)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_wrong_variant_names_both_and_the_fit(t8_state):
    message = _error(fastvit.create_model("s12"), t8_state)
    assert "fastvit_s12" in message
    assert "wrong shape" in message and "stem.0.conv_kxk.0.conv.weight" in message
    assert "create_model('t8', num_classes=1000, inference_mode=False)" in message


def test_fused_checkpoint_into_training_model_points_to_inference_mode(t8_state):
    fused = fastvit.reparameterize(fastvit.create_model("t8")).state_dict()
    message = _error(fastvit.create_model("t8"), fused)
    assert "missing keys" in message and "unexpected keys" in message
    assert "inference_mode=True" in message


def test_wrong_class_count_is_named(t8_state):
    message = _error(fastvit.create_model("t8", num_classes=10), t8_state)
    assert "head.fc.weight" in message and "num_classes=1000" in message


def test_apple_checkpoint_of_deeper_variant_is_refused():
    sa24 = to_apple_layout(fastvit.create_model("sa24").state_dict(), "sa24")
    message = _error(fastvit.create_model("sa12"), sa24)
    assert "fastvit_sa12" in message and "create_model('sa24'" in message


class _NotATensor:
    pass


def test_pickled_objects_are_refused(tmp_path, t8_state):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": t8_state, "extra": _NotATensor()}, path)
    assert "refusing to unpickle" in _error(fastvit.create_model("t8"), path)


def test_unreadable_files(tmp_path):
    model = fastvit.create_model("t8")
    assert "not found" in _error(model, tmp_path / "nope.pth")
    (tmp_path / "cut.pth").write_bytes(b"PK\x03\x04 truncated")
    assert "not a readable PyTorch checkpoint" in _error(model, tmp_path / "cut.pth")
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00\x00")
    assert "safetensors" in _error(model, tmp_path / "cut.safetensors")
    assert "no state dict found" in _error(model, {"epoch": 3, "args": {"lr": 0.1}})
