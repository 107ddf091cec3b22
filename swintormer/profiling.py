"""Parameter and MAC counts under the two conventions the literature mixes.

- ``thop``: what ``thop.profile`` reports: conv and linear MACs plus ``nn.LayerNorm`` /
  ``nn.GroupNorm`` at 4 ops per element (its ``count_normalization``); attention matmuls are
  invisible to it.
- ``fvcore``: what ``fvcore``'s ``FlopCountAnalysis`` reports: conv, linear and every matmul
  (the attention maps), plus ``aten::layer_norm`` / ``aten::group_norm`` at 5 ops per element.

Restormer's hand-written LayerNorm is elementwise arithmetic, which neither tool counts. Counting
runs on the ``meta`` device, so even 26M-parameter models at 512x512 take well under a second.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from swintormer.layers.norms import ChannelLayerNorm

__all__ = ["CostReport", "count_cost", "profile_variant"]

_MATMUL_OPS = ("aten.bmm", "aten.baddbmm", "aten.matmul")
#: what thop/fvcore see as nn.LayerNorm / nn.GroupNorm (ours call F.layer_norm from a wrapper
#: so they can compute in fp32; their inner nn.LayerNorm module is then never called)
_NORMS = (nn.LayerNorm, nn.GroupNorm, ChannelLayerNorm)


@dataclass(frozen=True)
class CostReport:
    """Counts for one forward pass of one input of ``input_shape`` (MACs, not FLOPs)."""

    input_shape: tuple[int, ...]
    params: int
    conv_linear_macs: int
    attention_matmul_macs: int
    norm_elements: int

    @property
    def thop_macs(self) -> int:
        """conv + linear + 4 * normalised elements (thop 0.1.1)."""
        return self.conv_linear_macs + 4 * self.norm_elements

    @property
    def fvcore_macs(self) -> int:
        """conv + linear + attention matmuls + 5 * normalised elements (fvcore 0.1.5)."""
        return self.conv_linear_macs + self.attention_matmul_macs + 5 * self.norm_elements

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(thop_macs=self.thop_macs, fvcore_macs=self.fvcore_macs)
        return d


def _hook_counter(totals: dict[str, int]):
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            totals["conv_linear"] += output.numel() * module.weight[0].numel()
        elif isinstance(module, nn.Linear):
            totals["conv_linear"] += output.numel() * module.in_features
        elif isinstance(module, _NORMS):
            totals["norm"] += inputs[0].numel()

    return hook


def count_cost(model: nn.Module, input_shape: tuple[int, ...], **forward_kwargs: torch.Tensor) -> CostReport:
    """Count ``model``'s cost for one input of ``input_shape`` (e.g. ``(1, 6, 256, 256)``).

    ``forward_kwargs`` are extra inputs (for example the diffusion prior), moved to ``meta`` too.
    """
    params = sum(p.numel() for p in model.parameters())
    meta = copy.deepcopy(model).to("meta")
    totals = {"conv_linear": 0, "norm": 0}
    hook = _hook_counter(totals)
    handles = [m.register_forward_hook(hook) for m in meta.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear, *_NORMS))]
    kwargs = {k: torch.empty(v.shape, device="meta", dtype=v.dtype) for k, v in forward_kwargs.items()}
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            meta(torch.empty(input_shape, device="meta"), **kwargs)
    finally:
        for h in handles:
            h.remove()
    by_op = counter.get_flop_counts().get("Global", {})
    matmul_flops = sum(v for k, v in by_op.items() if str(k) in _MATMUL_OPS)
    return CostReport(
        input_shape=tuple(input_shape),
        params=params,
        conv_linear_macs=totals["conv_linear"],
        attention_matmul_macs=matmul_flops // 2,
        norm_elements=totals["norm"],
    )


def _example_inputs(cfg: object, size: int, batch: int) -> tuple[tuple[int, ...], dict[str, torch.Tensor]]:
    """Input shape and extra inputs of one forward for an image tile of ``size x size``."""
    from swintormer.diffusion.config import DenoiserConfig, FirstStageConfig
    from swintormer.models.config import RestorerConfig

    if isinstance(cfg, RestorerConfig):
        extra = {}
        if cfg.prior_channels:
            side = size // cfg.prior_factor
            extra["prior"] = torch.empty(batch, cfg.prior_channels, side, side)
        return (batch, cfg.in_channels, size, size), extra
    if isinstance(cfg, FirstStageConfig):
        if cfg.part == "encoder":
            return (batch, cfg.image_channels, size, size), {}
        return (batch, cfg.z_channels, size // cfg.factor, size // cfg.factor), {}
    if isinstance(cfg, DenoiserConfig):
        side = size // 4  # the latent of an f=4 first stage
        return (batch, cfg.in_channels, side, side), {"t": torch.zeros(batch, dtype=torch.long)}
    raise TypeError(f"cannot profile a {type(cfg).__name__}")


#: a deployed model's component -> its role in a profile
_ROLES = {"restorer": "model", "encoder": "encoder", "denoiser": "denoiser_per_step"}


def profile_variant(name: str, size: int = 256, batch: int = 1) -> dict[str, CostReport]:
    """Cost of a registered variant for an image tile of ``size``; prior restorers add their encoder
    and one denoiser step (``"denoiser_per_step"``) as separate entries. Other variants (a lone
    denoiser or encoder) are counted as they are, under ``"model"``.
    """
    from swintormer.model import DeblurModel
    from swintormer.models.config import RestorerConfig
    from swintormer.registry import build_model, get_config

    if isinstance(get_config(name), RestorerConfig):
        parts = {_ROLES[k]: m for k, m in DeblurModel.build(name).components().items()}
    else:
        parts = {"model": build_model(name)}
    reports = {}
    for role, module in parts.items():
        shape, extra = _example_inputs(module.config, size, batch)
        reports[role] = count_cost(module, shape, **extra)
    return reports
