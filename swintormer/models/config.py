"""The restorer's architecture, as one frozen dataclass, and the mapping from upstream kwargs."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

from swintormer.errors import SwintormerError

__all__ = ["RestorerConfig"]

Arch = Literal["swintormer", "restormer"]


@dataclass(frozen=True)
class RestorerConfig:
    """Everything that decides a restorer's weights and forward pass.

    ``arch="swintormer"``: the Swintormer reference code (pixel-unshuffle stem, mixed shifted-window
    + channel attention, ``softmax_one``); ``window_size`` applies. ``arch="restormer"``: Restormer
    (MDTA + GDFN at full resolution); ``layernorm_type`` and ``dual_pixel`` apply.
    ``prior_channels > 0`` adds the diffusion-prior input (a latent at ``1/prior_factor`` of the image
    size) merged at the stem (ours, not upstream); with 0 the model is exactly the upstream one.

    ``bias`` is the upstream constructor's flag: the attention, FFN, 1x1 reduce and skip
    convolutions (and Restormer's output convolution) take it. Neither reference passes it to
    the stem convolution, and Swintormer's output convolution never has one;
    ``stem_bias`` records a stem convolution with a bias (a checkpoint from a variant of the
    reference code that has one loads too, see :mod:`swintormer.models.detect`).
    """

    arch: Arch = "swintormer"
    in_channels: int = 6
    out_channels: int = 3
    dim: int = 48
    num_blocks: tuple[int, int, int, int] = (2, 4, 6, 8)
    num_refinement_blocks: int = 4
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.66
    bias: bool = False
    stem_bias: bool = False
    window_size: int = 16
    layernorm_type: Literal["WithBias", "BiasFree"] = "WithBias"
    dual_pixel: bool = False
    prior_channels: int = 0
    prior_factor: int = 4

    def __post_init__(self) -> None:
        if self.arch not in ("swintormer", "restormer"):
            raise SwintormerError(f"unknown arch {self.arch!r}: expected 'swintormer' or 'restormer'")
        if len(self.num_blocks) != 4 or len(self.heads) != 4:
            raise SwintormerError("num_blocks and heads need exactly 4 entries (one per U-Net level)")
        if self.prior_channels and self.prior_factor % self.stem_factor:
            raise SwintormerError(f"prior_factor {self.prior_factor} must be a multiple of the stem factor {self.stem_factor}")
        if self.arch == "swintormer" and self.in_channels < 3:
            raise SwintormerError("swintormer needs at least 3 input channels (the first 3 are the residual)")
        for level, h in enumerate(self.heads):
            ch = self.dim * 2 ** min(level, 3)
            width = ch // 2 if self.arch == "swintormer" else ch
            if width % h:
                raise SwintormerError(f"level {level + 1}: {width} attention channels do not split into {h} heads")

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (the forward pads to it)."""
        if self.arch == "swintormer":
            return 16 * self.window_size  # stem /2, three downsamples /8, then M x M windows
        return 8

    @property
    def stem_factor(self) -> int:
        """How much smaller than the input the stem features are (swintormer 2, restormer 1)."""
        return 2 if self.arch == "swintormer" else 1

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RestorerConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise SwintormerError(f"unknown restorer config keys {unknown}; known: {sorted(fields)}")
        data = dict(data)
        for key in ("num_blocks", "heads"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    @classmethod
    def from_upstream(cls, arch: Arch, kwargs: dict[str, Any]) -> "RestorerConfig":
        """Map the upstream constructor's keyword arguments onto a config.

        Swintormer: ``inp_channels, out_channels, dim, num_blocks, num_refinement_blocks, heads,
        ffn_expansion_factor, bias, window_size, LayerNorm_type`` (accepted and, as in the
        reference code, without effect: its norm is always ``nn.LayerNorm``). Restormer:
        ``LayerNorm_type`` and ``dual_pixel_task`` instead of ``window_size``. Missing keys take
        the upstream defaults.
        """
        names = {
            "inp_channels": "in_channels",
            "out_channels": "out_channels",
            "dim": "dim",
            "num_blocks": "num_blocks",
            "num_refinement_blocks": "num_refinement_blocks",
            "heads": "heads",
            "ffn_expansion_factor": "ffn_expansion_factor",
            "bias": "bias",
        }
        if arch == "swintormer":
            names["window_size"] = "window_size"
            kwargs = {k: v for k, v in kwargs.items() if k != "LayerNorm_type"}  # the reference ignores it
            defaults: dict[str, Any] = {"in_channels": 6}
        elif arch == "restormer":
            names.update({"LayerNorm_type": "layernorm_type", "dual_pixel_task": "dual_pixel"})
            defaults = {"in_channels": 3, "num_blocks": (4, 6, 6, 8)}
        else:
            raise SwintormerError(f"unknown arch {arch!r}: expected 'swintormer' or 'restormer'")
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise SwintormerError(f"unsupported {arch} constructor arguments {unknown}; supported: {sorted(names)}")
        data = {"arch": arch, **defaults, **{names[k]: v for k, v in kwargs.items()}}
        return cls.from_dict(data)
