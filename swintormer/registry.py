"""Named model variants: ``build_model("swintormer-dpdd", **overrides)``.

Each variant is a tiny function returning its config; the registry maps names to them. Restorer
variants live here; the diffusion networks register theirs in the same style.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from torch import nn

from swintormer.errors import SwintormerError
from swintormer.diffusion.config import DenoiserConfig, FirstStageConfig
from swintormer.models.config import RestorerConfig

__all__ = [
    "build_from_config",
    "build_model",
    "config_class",
    "get_config",
    "list_models",
    "prior_components",
    "register_config_type",
    "register_model",
]

#: variant name -> (config factory, one-line description)
_VARIANTS: dict[str, tuple[Callable[[], Any], str]] = {}
#: config class name -> (config class, builder)
_CONFIG_TYPES: dict[str, tuple[type, Callable[[Any], nn.Module]]] = {}


def register_config_type(cls: type, builder: Callable[[Any], nn.Module]) -> None:
    """Tell the registry (and so checkpoints) how to build a module from a ``cls`` config."""
    _CONFIG_TYPES[cls.__name__] = (cls, builder)


def config_class(type_name: str) -> type:
    """The registered config class called ``type_name`` (as stored in checkpoints)."""
    if type_name not in _CONFIG_TYPES:
        raise SwintormerError(f"unknown config type {type_name!r}; known: {sorted(_CONFIG_TYPES)}")
    return _CONFIG_TYPES[type_name][0]


def build_from_config(cfg: Any) -> nn.Module:
    """The freshly initialised module for a config of any registered type."""
    config_class(type(cfg).__name__)  # raises a clear error for an unregistered type
    return _CONFIG_TYPES[type(cfg).__name__][1](cfg)


def register_model(name: str, description: str):
    """Decorator: register ``fn() -> config`` as the named variant ``name``."""

    def wrap(fn: Callable[[], Any]) -> Callable[[], Any]:
        if name in _VARIANTS:
            raise ValueError(f"model variant {name!r} registered twice")
        _VARIANTS[name] = (fn, description)
        return fn

    return wrap


def list_models(kind: type | None = None) -> dict[str, str]:
    """``{name: description}`` of every registered variant (of config type ``kind`` if given)."""
    return {
        name: desc for name, (fn, desc) in sorted(_VARIANTS.items()) if kind is None or isinstance(fn(), kind)
    }


def get_config(name: str, **overrides: Any) -> Any:
    """The variant's config with ``overrides`` applied (``dataclasses.replace``)."""
    if name not in _VARIANTS:
        raise SwintormerError(f"unknown model {name!r}; choose one of: {', '.join(sorted(_VARIANTS))}")
    cfg = _VARIANTS[name][0]()
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


def build_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered variant ``name`` (freshly initialised) with config ``overrides``."""
    return build_from_config(get_config(name, **overrides))


def _build_restorer(cfg: RestorerConfig) -> nn.Module:
    from swintormer.models import build_restorer

    return build_restorer(cfg)


register_config_type(RestorerConfig, _build_restorer)


@register_model("swintormer-dpdd", "Swintormer reference defaults, dual-pixel (6 ch: right, left), 25.18M params")
def swintormer_dpdd() -> RestorerConfig:
    return RestorerConfig(arch="swintormer", in_channels=6)


@register_model("swintormer-single", "Swintormer, single-image defocus (3 ch)")
def swintormer_single() -> RestorerConfig:
    return RestorerConfig(arch="swintormer", in_channels=3)


@register_model("swintormer-tiny", "tiny single-image Swintormer (dim 16, window 8) for CPU demos and tests")
def swintormer_tiny() -> RestorerConfig:
    # window 8 (not the reference's 16): inputs need multiples of 128, so it trains on 128x128 crops
    # and still takes the 256 tiles; on a 2-core CPU a training step costs ~0.1-0.18 s per 128^2
    # crop against ~1.2-1.5 s per 256^2 crop with window 16 (measured, swintormer-rt issue 5).
    return RestorerConfig(
        arch="swintormer", in_channels=3, dim=16, num_blocks=(1, 2, 2, 2), num_refinement_blocks=1, window_size=8
    )


@register_model("restormer-defocus-single", "Restormer, single-image defocus (3 ch), 26.13M params")
def restormer_defocus_single() -> RestorerConfig:
    return RestorerConfig(arch="restormer", in_channels=3, num_blocks=(4, 6, 6, 8))


@register_model("restormer-defocus-dual", "Restormer, dual-pixel defocus (6 ch: right, left), 26.13M params")
def restormer_defocus_dual() -> RestorerConfig:
    return RestorerConfig(arch="restormer", in_channels=6, num_blocks=(4, 6, 6, 8), dual_pixel=True)


@register_model("restormer-tiny", "tiny single-image Restormer (dim 16) for CPU tests")
def restormer_tiny() -> RestorerConfig:
    return RestorerConfig(arch="restormer", in_channels=3, dim=16, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1)


# --- the diffusion prior -------------------------------------------------------------------------

def _build_first_stage(cfg: FirstStageConfig) -> nn.Module:
    from swintormer.diffusion.autoencoder import build_first_stage

    return build_first_stage(cfg)


def _build_denoiser(cfg: DenoiserConfig) -> nn.Module:
    from swintormer.diffusion.unet import DenoiserUNet

    return DenoiserUNet(cfg)


register_config_type(FirstStageConfig, _build_first_stage)
register_config_type(DenoiserConfig, _build_denoiser)

#: prior restorer variant -> (first-stage variant, denoiser variant) it is built and shipped with
PRIOR_COMPONENTS: dict[str, tuple[str, str]] = {
    "swintormer-dpdd-prior": ("ae-f4", "ldm-bsr"),
    "swintormer-tiny-prior": ("ae-f4-tiny", "denoiser-tiny"),
}


def prior_components(name: str) -> tuple[str, str] | None:
    """``(first-stage variant, denoiser variant)`` of a prior restorer variant, else None."""
    return PRIOR_COMPONENTS.get(name)


@register_model("swintormer-dpdd-prior", "swintormer-dpdd with the diffusion prior merged at the stem (ae-f4 + ldm-bsr)")
def swintormer_dpdd_prior() -> RestorerConfig:
    return dataclasses.replace(swintormer_dpdd(), prior_channels=3)


@register_model("swintormer-tiny-prior", "swintormer-tiny with the diffusion prior (ae-f4-tiny + denoiser-tiny)")
def swintormer_tiny_prior() -> RestorerConfig:
    return dataclasses.replace(swintormer_tiny(), prior_channels=3)


@register_model("ae-f4", "first-stage encoder, LDM-BSR sizes (f=4, 3 latent channels, ch 128, mult 1,2,4): 22.34M")
def ae_f4() -> FirstStageConfig:
    return FirstStageConfig()


@register_model("ae-f4-tiny", "tiny first-stage encoder (f=4, ch 16, 8 norm groups, no attention) for CPU work")
def ae_f4_tiny() -> FirstStageConfig:
    return FirstStageConfig(ch=16, ch_mult=(1, 2, 4), num_res_blocks=1, norm_groups=8, mid_attention=False)


@register_model("ldm-bsr", "denoiser UNet with LDM-BSR sizes (model_channels 160, mult 1,2,2,4): 113.62M")
def ldm_bsr() -> DenoiserConfig:
    return DenoiserConfig()


@register_model("denoiser-small", "small denoiser UNet (model_channels 64, mult 1,2,2,4, 1 res block)")
def denoiser_small() -> DenoiserConfig:
    return DenoiserConfig(model_channels=64, num_res_blocks=1)


@register_model("denoiser-tiny", "tiny denoiser UNet (model_channels 32, mult 1,2,2, 1 res block) for CPU work")
def denoiser_tiny() -> DenoiserConfig:
    return DenoiserConfig(model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1, attention_resolutions=(4,))
