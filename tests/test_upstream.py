"""Upstream checkpoints load and reproduce the reference outputs; full-size variants are exact."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from swintormer import load_upstream
from swintormer.checkpoint import load_checkpoint, save_checkpoint
from swintormer.errors import SwintormerError
from swintormer.registry import build_model

FIXTURES = {
    "restormer_single_small": "restormer",
    "restormer_dual_small": "restormer",
    "restormer_biasfree_small": "restormer",
    "swintormer_dual_small": "swintormer",
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_reproduces_reference_output(upstream_dir, name):
    io = torch.load(upstream_dir / f"{name}_io.pt", weights_only=True)
    model = load_upstream(upstream_dir / f"{name}.pth", FIXTURES[name], io["config"])
    with torch.no_grad():
        out = model(io["input"])
    assert out.shape == io["output"].shape
    assert (out - io["output"]).abs().max().item() < 1e-5


@pytest.mark.parametrize(
    "variant, key, params",
    [
        ("swintormer-dpdd", "swintormer_dual_pixel_defocus", 25_177_224),
        ("restormer-defocus-single", "restormer_single_defocus", 26_126_644),
        ("restormer-defocus-dual", "restormer_dual_pixel_defocus", 26_132_548),
    ],
)
def test_full_size_variants_match_upstream_state_dicts(upstream_dir, variant, key, params):
    ref = json.loads((upstream_dir / "full_state_dict_shapes.json").read_text())[key]
    model = build_model(variant)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: list(v) for k, v in ref["state_dict"].items()}
    assert sum(p.numel() for p in model.parameters()) == params == ref["num_params"]


def test_params_ema_preferred_and_module_prefix_stripped(upstream_dir, tmp_path):
    io = torch.load(upstream_dir / "restormer_single_small_io.pt", weights_only=True)
    good = torch.load(upstream_dir / "restormer_single_small.pth", weights_only=True)["params"]
    noise = {k: torch.randn_like(v) for k, v in good.items()}
    path = tmp_path / "ema.pth"
    torch.save({"params": noise, "params_ema": {f"module.{k}": v for k, v in good.items()}}, path)
    model = load_upstream(path, "restormer", io["config"])
    with torch.no_grad():
        assert (model(io["input"]) - io["output"]).abs().max() < 1e-5
    # The explicit key wins over the automatic choice.
    noisy = load_upstream(path, "restormer", io["config"], param_key="params")
    with torch.no_grad():
        assert (noisy(io["input"]) - io["output"]).abs().max() > 1e-2


def test_plain_state_dict_and_safetensors_upstream(upstream_dir, tmp_path):
    from safetensors.torch import save_file

    io = torch.load(upstream_dir / "swintormer_dual_small_io.pt", weights_only=True)
    state = torch.load(upstream_dir / "swintormer_dual_small.pth", weights_only=True)["params"]
    torch.save(state, tmp_path / "plain.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "up.safetensors"))
    for f in ("plain.pt", "up.safetensors"):
        model = load_upstream(tmp_path / f, "swintormer", io["config"])
        with torch.no_grad():
            assert (model(io["input"]) - io["output"]).abs().max() < 1e-5


def test_mismatch_lists_the_problem_keys(upstream_dir):
    io = torch.load(upstream_dir / "swintormer_dual_small_io.pt", weights_only=True)
    with pytest.raises(SwintormerError) as err:
        load_upstream(upstream_dir / "restormer_dual_small.pth", "swintormer", io["config"])
    msg = str(err.value)
    assert "missing keys" in msg and "unexpected keys" in msg and "logit_scale" in msg and "temperature" in msg


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"params": Evil()}, f)
    with pytest.raises(SwintormerError, match="plain-tensor"):
        load_upstream(path, "swintormer", {})


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(SwintormerError):
        load_upstream(bad, "restormer", {})
    with pytest.raises(SwintormerError, match="not found"):
        load_upstream(tmp_path / "nope.pth", "restormer", {})
    with pytest.raises(SwintormerError, match="unsupported restormer constructor"):
        load_upstream(bad, "restormer", {"window_size": 8})


def test_our_format_round_trip(upstream_dir, tmp_path):
    io = torch.load(upstream_dir / "swintormer_dual_small_io.pt", weights_only=True)
    model = load_upstream(upstream_dir / "swintormer_dual_small.pth", "swintormer", io["config"])
    path = save_checkpoint(tmp_path / "m.safetensors", {"restorer": model}, {"note": "x"})
    ckpt = load_checkpoint(path)
    assert ckpt.restorer.config == model.config and ckpt.metadata["note"] == "x"
    with torch.no_grad():
        assert torch.equal(ckpt.restorer(io["input"]), model(io["input"]))
