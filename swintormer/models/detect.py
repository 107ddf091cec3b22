"""A restorer's whole config read from its state dict, as spandrel does for other architectures.

Upstream Swintormer and Restormer checkpoints are bare state dicts: no config travels with them.
Everything that shapes a weight is recoverable from the shapes and the keys:

- family: ``attn.logit_scale`` (Swintormer's cosine attention) or ``attn.temperature`` (MDTA);
- input channels from the stem (Swintormer's sees ``4 * in`` channels after pixel-unshuffle),
  dual pixel (Restormer) from ``skip_conv``, output channels from the output convolution;
- ``dim`` from the stem, blocks per level and refinement blocks from the block indices, heads
  per level from the ``logit_scale``/``temperature`` shapes, the FFN factor from the hidden
  widths (any factor that gives those widths builds the same network: the reference's 2.66
  when it fits, else the shortest decimal that does);
- ``bias`` from the attention/FFN convolutions, ``stem_bias`` from the stem, the LayerNorm type
  from the norms, the prior input (ours) from ``prior_embed``.

The window size shapes no weight: Swintormer's position tables are non-persistent buffers,
derived from it. When a file carries them (some forks save them), the window size is read from
them; otherwise it is the reference's 16 and the detection says so in its notes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

import torch

from swintormer.errors import SwintormerError
from swintormer.models.config import RestorerConfig

__all__ = ["DERIVED_BUFFERS", "Detection", "detect_restorer"]

#: Keys of derived tables some forks save; they are read for the window size and then dropped.
DERIVED_BUFFERS = ("relative_coords_table", "relative_position_index")
DEFAULT_WINDOW = 16
DEFAULT_FFN = 2.66
LEVELS = ("encoder_level1", "encoder_level2", "encoder_level3", "latent")
#: decoder stage -> the encoder level whose block count and heads it repeats
DECODERS = {"decoder_level3": 2, "decoder_level2": 1, "decoder_level1": 0, "refinement": 0}


@dataclass(frozen=True)
class Detection:
    """What :func:`detect_restorer` found: the config and what it had to assume."""

    config: RestorerConfig
    notes: tuple[str, ...] = ()


def _fail(what: str, state: Mapping[str, torch.Tensor]) -> SwintormerError:
    tops = sorted({k.split(".", 1)[0] for k in state})
    shown = ", ".join(tops[:14]) + (f", ... ({len(tops)} in all)" if len(tops) > 14 else "")
    return SwintormerError(
        f"cannot tell the architecture from this state dict: {what}; its top-level modules are: {shown}. "
        "Name the variant with --model (see `swintormer models`)"
    )


def _shape(state: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise _fail(f"no {key!r}", state)
    return tuple(state[key].shape)


def _block_count(state: Mapping[str, torch.Tensor], stage: str) -> int:
    indices = {int(m.group(1)) for k in state if (m := re.match(rf"{stage}\.(\d+)\.", k))}
    if indices != set(range(len(indices))):
        raise _fail(f"{stage} has blocks {sorted(indices)}, not 0..n-1", state)
    return len(indices)


def _family(state: Mapping[str, torch.Tensor]) -> str:
    swin = any(k.endswith(".attn.logit_scale") for k in state)
    mdta = any(k.endswith(".attn.temperature") for k in state)
    if swin == mdta:
        found = "both Swintormer (logit_scale) and Restormer (temperature) attention" if swin else "no known attention"
        raise _fail(found, state)
    return "swintormer" if swin else "restormer"


def _heads(state: Mapping[str, torch.Tensor], key: str, counts: list[int]) -> tuple[int, int, int, int]:
    heads = []
    for level, stage in enumerate(LEVELS):
        if counts[level] == 0:
            raise _fail(f"{stage} has no blocks", state)
        heads.append(_shape(state, f"{stage}.0.attn.{key}")[0])
    for stage, level in DECODERS.items():
        for i in range(_block_count(state, stage)):
            got = _shape(state, f"{stage}.{i}.attn.{key}")[0]
            if got != heads[level]:
                raise _fail(f"{stage}.{i} has {got} heads where {LEVELS[level]} has {heads[level]}", state)
    return tuple(heads)  # type: ignore[return-value]


def _ffn_factor(widths: dict[int, int]) -> float:
    """A factor ``f`` with ``int(C * f) == hidden`` for every ``{C: hidden}``: 2.66 if it fits, else the shortest decimal."""

    def fits(f: float) -> bool:
        return all(int(c * f) == hidden for c, hidden in widths.items())

    if fits(DEFAULT_FFN):
        return DEFAULT_FFN
    lo = max(hidden / c for c, hidden in widths.items())
    hi = min((hidden + 1) / c for c, hidden in widths.items())
    for digits in range(1, 9):
        candidate = math.ceil(lo * 10**digits) / 10**digits
        if candidate < hi and fits(candidate):
            return candidate
    raise SwintormerError(f"FFN hidden widths {widths} fit no single expansion factor")


def _bias_flag(state: Mapping[str, torch.Tensor], weights: list[str]) -> bool:
    """Whether the convolutions the ``bias`` flag governs have biases (all of them, or none)."""
    present = [w for w in weights if w.removesuffix("weight") + "bias" in state]
    if present and len(present) != len(weights):
        missing = [w for w in weights if w not in present][:3]
        raise _fail(f"some convolutions of the bias flag have biases and some ({', '.join(missing)} ...) do not", state)
    return bool(present)


def _window(state: Mapping[str, torch.Tensor], family: str) -> tuple[int, list[str]]:
    if family != "swintormer":
        return DEFAULT_WINDOW, []
    sides = set()
    for key, value in state.items():
        if key.endswith(".relative_position_index"):
            sides.add(math.isqrt(value.shape[-1]))
        elif key.endswith(".relative_coords_table"):
            sides.add((value.shape[-2] + 1) // 2 if value.dim() == 4 else (math.isqrt(value.shape[0]) + 1) // 2)
    if len(sides) > 1:
        raise SwintormerError(f"the position tables give several window sizes {sorted(sides)}; this architecture has one")
    if sides:
        window = sides.pop()
        return window, [f"window size {window} read from the saved position tables"]
    return DEFAULT_WINDOW, [f"window size {DEFAULT_WINDOW} assumed: it shapes no weight and this file has no position tables"]


def detect_restorer(state: Mapping[str, torch.Tensor]) -> Detection:
    """The :class:`RestorerConfig` of a Swintormer or Restormer state dict (upstream keys, ``module.`` stripped).

    Raises :class:`SwintormerError` naming what was found when the layout is not one of these.
    """
    family = _family(state)
    stem = "patch_embed.proj2" if family == "swintormer" else "patch_embed.proj"
    dim, stem_in = _shape(state, f"{stem}.weight")[:2]
    if family == "swintormer" and stem_in % 4:
        raise _fail(f"a stem of {stem_in} input channels (pixel-unshuffle makes it 4 x the image's)", state)
    in_channels = stem_in // 4 if family == "swintormer" else stem_in
    out_key = "output.0.weight" if family == "swintormer" else "output.weight"
    out_channels = _shape(state, out_key)[0] // (4 if family == "swintormer" else 1)
    counts = [_block_count(state, stage) for stage in LEVELS]
    for stage, level in DECODERS.items():
        if stage != "refinement" and _block_count(state, stage) != counts[level]:
            raise _fail(f"{stage} has {_block_count(state, stage)} blocks, {LEVELS[level]} {counts[level]}", state)
    refinement = _block_count(state, "refinement")
    heads = _heads(state, "logit_scale" if family == "swintormer" else "temperature", counts)
    blocks = [f"{s}.{i}" for s in (*LEVELS, *DECODERS) for i in range(_block_count(state, s))]
    widths = {state[f"{b}.ffn.project_out.weight"].shape[0]: state[f"{b}.ffn.project_out.weight"].shape[1] for b in blocks}
    flagged = [f"{b}.{conv}.weight" for b in blocks for conv in ("attn.qkv", "attn.qkv_dwconv", "attn.project_out", "ffn.project_in", "ffn.project_out")]
    flagged += ["reduce_chan_level3.weight", "reduce_chan_level2.weight"] + (["skip_conv.weight"] if "skip_conv.weight" in state else [])
    if family == "restormer":
        flagged.append("output.weight")
    window, notes = _window(state, family)
    fields = dict(
        arch=family, in_channels=in_channels, out_channels=out_channels, dim=dim, num_blocks=tuple(counts),
        num_refinement_blocks=refinement, heads=heads, ffn_expansion_factor=_ffn_factor(widths),
        bias=_bias_flag(state, flagged), stem_bias=f"{stem}.bias" in state, window_size=window,
    )
    if family == "restormer":
        fields["layernorm_type"] = "WithBias" if f"{blocks[0]}.norm1.body.bias" in state else "BiasFree"
        fields["dual_pixel"] = "skip_conv.weight" in state
    elif f"{blocks[0]}.norm1.body.bias" not in state:
        raise _fail("Swintormer blocks whose LayerNorm has no bias (the reference's is nn.LayerNorm)", state)
    if "prior_embed.proj.weight" in state:
        out, prior_channels = _shape(state, "prior_embed.proj.weight")[:2]
        upscale = math.isqrt(out // dim)
        fields.update(prior_channels=prior_channels, prior_factor=upscale * (2 if family == "swintormer" else 1))
    if widths and fields["ffn_expansion_factor"] != DEFAULT_FFN:
        notes.append(f"FFN expansion factor {fields['ffn_expansion_factor']} (any factor giving hidden widths {widths} builds the same network)")
    return Detection(RestorerConfig(**fields), tuple(notes))
