"""Upstream checkpoints load and reproduce the reference outputs, told their config or not; full-size variants are exact."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from swintormer import load_upstream
from swintormer.checkpoint import load_checkpoint, save_checkpoint
from swintormer.errors import SwintormerError
from swintormer.model import DeblurModel
from swintormer.models.config import RestorerConfig
from swintormer.models.detect import detect_restorer
from swintormer.registry import build_from_config, build_model, get_config

#: every fixture of tests/fixtures/upstream: a bias=True Swintormer and a BiasFree Restormer among them
FIXTURES = {
    "restormer_single_small": "restormer",
    "restormer_dual_small": "restormer",
    "restormer_biasfree_small": "restormer",
    "swintormer_dual_small": "swintormer",
    "swintormer_bias_small": "swintormer",
}


def _fixture(upstream_dir, name):
    io = torch.load(upstream_dir / f"{name}_io.pt", weights_only=True)
    return upstream_dir / f"{name}.pth", io


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


def test_mismatch_says_what_the_file_holds(upstream_dir):
    io = torch.load(upstream_dir / "swintormer_dual_small_io.pt", weights_only=True)
    with pytest.raises(SwintormerError) as err:
        load_upstream(upstream_dir / "restormer_dual_small.pth", "swintormer", io["config"])
    msg = str(err.value)
    assert "the file holds a restormer" in msg and "arch='restormer' (expected 'swintormer')" in msg and "drop --model" in msg


def test_unknown_layout_with_a_model_lists_the_problem_keys(upstream_dir):
    """A layout detection cannot read (a block missing): with --model, the strict load names the keys."""
    state = torch.load(upstream_dir / "swintormer_dual_small.pth", weights_only=True)["params"]
    broken = {k: v for k, v in state.items() if not k.startswith("decoder_level1.1.")}
    io = torch.load(upstream_dir / "swintormer_dual_small_io.pt", weights_only=True)
    path = upstream_dir.parent.parent / "broken.pth"
    try:
        torch.save({"params": broken}, path)
        with pytest.raises(SwintormerError, match="decoder_level1 has 1 blocks, encoder_level1 2"):
            DeblurModel.load(path)
        with pytest.raises(SwintormerError) as err:
            DeblurModel.load(path, RestorerConfig.from_upstream("swintormer", io["config"]))
        assert "missing keys: decoder_level1.1." in str(err.value)
    finally:
        path.unlink()


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


# --- loading without being told what the file is ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_loads_without_a_model_and_reproduces_its_output(upstream_dir, name):
    path, io = _fixture(upstream_dir, name)
    model = DeblurModel.load(path)
    assert model.restorer.config == RestorerConfig.from_upstream(FIXTURES[name], io["config"])
    with torch.no_grad():
        out = model.restorer(io["input"])
    assert (out - io["output"]).abs().max().item() < 1e-5


def test_swintormer_bias_flag_follows_the_reference_constructors(upstream_dir):
    """bias=True: attention, FFN, reduce and skip convolutions have biases; the stem and the output
    convolution never do (the reference code passes no flag to either)."""
    path, io = _fixture(upstream_dir, "swintormer_bias_small")
    state = torch.load(path, weights_only=True)["params"]
    model = build_from_config(RestorerConfig.from_upstream("swintormer", io["config"]))
    keys = set(model.state_dict())
    assert keys == set(state)
    assert "output.0.bias" not in keys and "patch_embed.proj2.bias" not in keys
    assert {"skip_conv.bias", "reduce_chan_level2.bias", "encoder_level1.0.attn.qkv_dwconv.bias"} <= keys
    restormer = build_model("restormer-defocus-single", bias=True).state_dict()
    assert "output.bias" in restormer and "patch_embed.proj.bias" not in restormer


def test_a_stem_bias_is_read_from_the_file(upstream_dir):
    """A fork whose stem convolution has a bias loads too: detected, and it takes effect."""
    path, io = _fixture(upstream_dir, "swintormer_dual_small")
    state = torch.load(path, weights_only=True)["params"]
    state["patch_embed.proj2.bias"] = torch.zeros(state["patch_embed.proj2.weight"].shape[0])
    target = upstream_dir.parent.parent / "stem_bias.pth"
    try:
        torch.save({"params": state}, target)
        model = DeblurModel.load(target)
        assert model.restorer.config.stem_bias
        told = DeblurModel.load(target, RestorerConfig.from_upstream("swintormer", io["config"]))  # kwargs do not fix it
        assert told.restorer.config.stem_bias
        with torch.no_grad():
            assert (model.restorer(io["input"]) - io["output"]).abs().max() < 1e-5  # a zero bias changes nothing
            model.restorer.patch_embed.proj2.bias.fill_(0.1)
            assert (model.restorer(io["input"]) - io["output"]).abs().max() > 1e-3
    finally:
        target.unlink()


def _shapes_state(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(v, device="meta") for k, v in shapes.items()}


@pytest.mark.parametrize(
    "variant, key",
    [
        ("swintormer-dpdd", "swintormer_dual_pixel_defocus"),
        ("restormer-defocus-single", "restormer_single_defocus"),
        ("restormer-defocus-dual", "restormer_dual_pixel_defocus"),
    ],
)
def test_full_size_layouts_are_detected_as_their_variant(upstream_dir, variant, key):
    ref = json.loads((upstream_dir / "full_state_dict_shapes.json").read_text())[key]
    detection = detect_restorer(_shapes_state(ref["state_dict"]))
    assert detection.config == get_config(variant)


def test_detection_reads_window_from_saved_tables_and_odd_ffn_factors():
    for window in (8, 16):
        model = build_model("swintormer-tiny", window_size=window)
        state = dict(model.state_dict())
        for name, buffer in model.named_buffers():
            state[name] = buffer  # as a fork that saves its position tables would
        detection = detect_restorer(state)
        assert detection.config == model.config and "read from the saved position tables" in detection.notes[0]
        loaded = DeblurModel.load(_saved(state, f"w{window}"))
        assert loaded.restorer.config.window_size == window and loaded.name == ("swintormer-tiny" if window == 8 else "")
    odd = build_model("restormer-tiny", ffn_expansion_factor=2.0)
    assert detect_restorer(odd.state_dict()).config == odd.config


def _saved(state: dict, name: str):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / f"{name}.pth"
    torch.save({"params": state}, path)
    return path


def test_detection_errors_list_what_was_found():
    with pytest.raises(SwintormerError, match="no known attention; its top-level modules are: input_blocks, middle_block"):
        detect_restorer(build_model("denoiser-tiny").state_dict())
    state = dict(build_model("restormer-tiny", bias=True).state_dict())
    del state["encoder_level1.0.ffn.project_in.bias"]
    with pytest.raises(SwintormerError, match="some convolutions of the bias flag have biases"):
        detect_restorer(state)


def test_model_must_agree_with_the_file(upstream_dir):
    path, _ = _fixture(upstream_dir, "swintormer_dual_small")
    with pytest.raises(SwintormerError, match=r"does not fit 'swintormer-dpdd'.*dim=16 \(expected 48\)"):
        DeblurModel.load(path, "swintormer-dpdd")


def test_inspect_and_convert_need_no_model(capsys, upstream_dir, tmp_path):
    from swintormer.cli import main

    path, io = _fixture(upstream_dir, "swintormer_bias_small")
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == "swintormer" and info["config"]["bias"] is True and info["variant"] is None
    assert info["parameters"]["restorer"] == sum(v.numel() for v in torch.load(path, weights_only=True)["params"].values())
    assert any("window size 16 assumed" in n for n in info["notes"])
    assert main(["inspect", str(path)]) == 0
    assert "family      swintormer" in capsys.readouterr().out
    out = tmp_path / "converted.safetensors"
    assert main(["convert", str(path), "-o", str(out)]) == 0
    model = DeblurModel.load(out)
    with torch.no_grad():
        assert (model.restorer(io["input"]) - io["output"]).abs().max() < 1e-5
    assert main(["inspect", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"].startswith("Swintormer-RT")
