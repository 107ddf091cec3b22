"""The deblurring model as deployed, and the one way to load it.

A :class:`DeblurModel` is the restorer and, for prior models, the encoder and the denoiser that
sample its diffusion prior, with the prior's default settings. :meth:`DeblurModel.load` is what
every entry point calls (the command line, the exporter, the training stages, evaluation, the
benchmarks): it reads our ``.safetensors`` format (config inside), BasicSR files
(``{"params": ...}``/``{"params_ema": ...}``) and plain state dicts, working out an upstream
file's architecture from its weights (:mod:`swintormer.models.detect`), and returns one
:class:`DeblurModel`. :meth:`DeblurModel.build` is its fresh-weights twin for a registered name.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from torch import nn

from swintormer.checkpoint import is_our_format, load_checkpoint, load_state_dict_into, read_state_dict
from swintormer.diffusion.config import SchedulerConfig
from swintormer.diffusion.prior import PriorSettings
from swintormer.errors import SwintormerError
from swintormer.models.config import RestorerConfig
from swintormer.models.detect import DERIVED_BUFFERS, Detection, detect_restorer
from swintormer.registry import build_from_config, build_model, get_config, list_models, prior_components

__all__ = ["ASSETS", "BUNDLED", "DEFAULT_CHECKPOINT", "DEFAULT_VARIANT", "DeblurModel", "Expect", "load_upstream", "matching_variant"]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
#: Bundled weights by variant (``swintormer/assets/README.md`` says how each was trained).
BUNDLED = {
    "swintormer-tiny": ASSETS / "swintormer-tiny.safetensors",
    "swintormer-tiny-prior": ASSETS / "swintormer-tiny-prior.safetensors",
}
#: The bundled default model: what every command uses without ``--model``/``--checkpoint``.
DEFAULT_VARIANT = "swintormer-tiny"
DEFAULT_CHECKPOINT = BUNDLED[DEFAULT_VARIANT]
#: What a caller may say it expects: a registered variant's name or a restorer config.
Expect = Union[str, RestorerConfig, None]


@dataclass
class DeblurModel:
    """The modules of one deblurring model plus how its prior is sampled by default.

    ``source`` says where the weights came from (a file, ``bundled``, or ``fresh``).
    """

    restorer: nn.Module
    encoder: nn.Module | None = None
    denoiser: nn.Module | None = None
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    prior: PriorSettings = field(default_factory=PriorSettings)
    name: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        needs = bool(self.restorer.config.prior_channels)
        has = self.encoder is not None and self.denoiser is not None
        if needs and not has:
            raise SwintormerError(
                f"model {self.name or ''} takes a diffusion prior but has no encoder/denoiser; "
                "prior models load from our checkpoint format (restorer, encoder and denoiser in one file)"
            )
        if has and not needs:
            raise SwintormerError("an encoder/denoiser was given for a restorer without a prior input")

    @property
    def has_prior(self) -> bool:
        return self.encoder is not None

    @property
    def in_channels(self) -> int:
        return self.restorer.config.in_channels

    @property
    def size_multiple(self) -> int:
        """Tile sides must be multiples of this (restorer, and encoder factor x denoiser UNet depth)."""
        multiple = self.restorer.config.size_multiple
        if self.has_prior:
            multiple = math.lcm(multiple, self.encoder.config.factor * self.denoiser.config.size_multiple)
        return multiple

    @property
    def label(self) -> str:
        """The variant's name, else its architecture: what logs and file names call it."""
        return self.name or self.restorer.config.arch

    def settings(self, steps: int | None = None, seed: int | None = None) -> PriorSettings:
        """The default prior settings with ``steps``/``seed`` overridden; checks they make sense."""
        if steps is not None and steps > 0 and not self.has_prior:
            raise SwintormerError(f"model {self.name or 'this model'} has no diffusion prior; --prior-steps does not apply")
        if steps is not None and steps < 0:
            raise SwintormerError(f"prior steps must be >= 0, got {steps}")
        s = self.prior
        return PriorSettings(steps=s.steps if steps is None else steps, eta=s.eta, seed=s.seed if seed is None else seed)

    def components(self) -> dict[str, nn.Module]:
        parts = {"restorer": self.restorer}
        if self.has_prior:
            parts.update(encoder=self.encoder, denoiser=self.denoiser)
        return parts

    def metadata(self) -> dict[str, str]:
        """Header entries that :meth:`load` reads back."""
        meta = {"model": self.name}
        if self.has_prior:
            meta["prior"] = json.dumps({"steps": self.prior.steps, "eta": self.prior.eta, "seed": self.prior.seed})
            meta["scheduler"] = json.dumps(self.scheduler.__dict__)
        return meta

    @classmethod
    def from_components(cls, parts: dict[str, nn.Module], meta: dict[str, str], source: str = "") -> "DeblurModel":
        if "restorer" not in parts:
            raise SwintormerError(f"{source or 'the checkpoint'} holds no restorer (components: {', '.join(sorted(parts))})")
        prior = PriorSettings(**json.loads(meta["prior"])) if "prior" in meta else PriorSettings()
        sched = SchedulerConfig.from_dict(json.loads(meta["scheduler"])) if "scheduler" in meta else SchedulerConfig()
        return cls(
            restorer=parts["restorer"], encoder=parts.get("encoder"), denoiser=parts.get("denoiser"),
            scheduler=sched, prior=prior, name=meta.get("model", ""), source=source,
        )

    @classmethod
    def build(cls, name: str) -> "DeblurModel":
        """A freshly initialised registered restorer variant, with its encoder and denoiser if it has a prior."""
        restorer = build_model(name)
        parts = prior_components(name)
        if parts is None:
            return cls(restorer=restorer, name=name, source="fresh")
        encoder, denoiser = build_model(parts[0]), build_model(parts[1])
        if encoder.config.z_channels != restorer.config.prior_channels:
            raise SwintormerError(f"{name}: encoder latent channels do not match the restorer's prior_channels")
        return cls(restorer=restorer, encoder=encoder, denoiser=denoiser, name=name, source="fresh")

    @classmethod
    def load(cls, path: str | Path | None = None, expect: Expect = None, param_key: str = "auto") -> "DeblurModel":
        """The model in ``path`` (modules in eval mode, on the CPU).

        - ``path`` of ours (``.safetensors`` with config): its model; ``expect``, if given, must match.
        - ``path`` from upstream (BasicSR ``.pth``/``.pt``, plain state dict, plain ``.safetensors``):
          its architecture is read from the weights; ``expect`` (a variant name or a config), if
          given, is what is built instead, and the file must agree with it.
        - no ``path``: the bundled weights of the variant ``expect`` names, or the default.
        """
        wanted = _expected_config(expect)
        if path is None:
            return _load_bundled(expect)
        path = Path(path)
        if not path.is_file():
            raise SwintormerError(f"checkpoint not found: {path}")
        if is_our_format(path):
            return _load_ours(path, expect, wanted)
        state = read_state_dict(path, param_key)
        config, name = _upstream_config(state, wanted, expect, path)
        state = {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in DERIVED_BUFFERS}
        if config.prior_channels:
            raise SwintormerError(f"{path} is a prior restorer; prior models load from our checkpoint format "
                                  "(restorer, encoder and denoiser in one file, written by training or `swintormer convert`)")
        restorer = load_state_dict_into(build_from_config(config), state, str(path)).eval()
        return cls(restorer=restorer, name=name, source=str(path))


def _expected_config(expect: Expect) -> RestorerConfig | None:
    if expect is None or isinstance(expect, RestorerConfig):
        return expect
    config = get_config(expect)
    if not isinstance(config, RestorerConfig):
        raise SwintormerError(f"{expect!r} is a {type(config).__name__} variant, not a deblurring model (see `swintormer models`)")
    return config


def _load_bundled(expect: Expect) -> DeblurModel:
    if expect is None:
        return _load_ours(DEFAULT_CHECKPOINT, None, None, source="bundled")
    if not isinstance(expect, str) or expect not in BUNDLED:
        raise SwintormerError(
            f"no bundled weights for {expect!r} (bundled: {', '.join(BUNDLED)}); pass --checkpoint with weights for it"
        )
    return _load_ours(BUNDLED[expect], expect, _expected_config(expect), source="bundled")


def _load_ours(path: Path, expect: Any, wanted: RestorerConfig | None, source: str = "") -> DeblurModel:
    ckpt = load_checkpoint(path)
    model = DeblurModel.from_components(ckpt.components, ckpt.metadata, source or str(path))
    if wanted is not None and model.restorer.config != wanted:
        raise SwintormerError(
            f"{path} holds a different model than {expect!r} "
            f"(checkpoint: {ckpt.metadata.get('model') or model.restorer.config}); drop --model or pick the matching one"
        )
    return model


def load_upstream(path: str | Path, arch: str, config: dict[str, Any], param_key: str = "auto") -> nn.Module:
    """The restorer of a public checkpoint built from the upstream constructor's ``config`` kwargs.

    The same as ``DeblurModel.load(path, RestorerConfig.from_upstream(arch, config)).restorer``;
    without a config, ``DeblurModel.load(path)`` reads the architecture from the weights.
    """
    return DeblurModel.load(path, RestorerConfig.from_upstream(arch, config), param_key).restorer  # type: ignore[arg-type]


def matching_variant(config: RestorerConfig) -> str:
    """The registered restorer variant whose config is exactly ``config``, or ``""``."""
    for name in list_models(RestorerConfig):
        if get_config(name) == config:
            return name
    return ""


def _differences(found: RestorerConfig, wanted: RestorerConfig, notes: tuple[str, ...]) -> list[str]:
    """Fields the file fixes that differ (the window size only when the file stores it)."""
    assumed_window = any(n.startswith("window size") and "assumed" in n for n in notes)
    skip = {"window_size"} if assumed_window else set()
    same_ffn = all(int(c * found.ffn_expansion_factor) == int(c * wanted.ffn_expansion_factor)
                   for c in (found.dim * 2**i for i in range(4)))
    if same_ffn:
        skip.add("ffn_expansion_factor")
    return [f"{f.name}={getattr(found, f.name)!r} (expected {getattr(wanted, f.name)!r})"
            for f in dataclasses.fields(RestorerConfig)
            if f.name not in skip and getattr(found, f.name) != getattr(wanted, f.name)]


def _upstream_config(state: dict, wanted: RestorerConfig | None, expect: Any, path: Path) -> tuple[RestorerConfig, str]:
    """The config to build for an upstream state dict, and the variant name it is (or ``""``)."""
    try:
        detection: Detection | None = detect_restorer(state)
    except SwintormerError:
        if wanted is None:
            raise
        detection = None  # an unknown layout with --model: the strict load below lists the keys
    if wanted is None:
        config = detection.config
        for note in detection.notes:
            log.info("%s: %s", path.name, note)
        return config, matching_variant(config)
    if detection is not None:
        # the stem bias is a layout detail the constructor's arguments do not fix: the file decides
        wanted = dataclasses.replace(wanted, stem_bias=detection.config.stem_bias)
        diffs = _differences(detection.config, wanted, detection.notes)
        if diffs:
            raise SwintormerError(
                f"{path} does not fit {expect!r}: the file holds a {detection.config.arch} with {'; '.join(diffs)}; "
                "drop --model to load it as it is (see `swintormer inspect`)"
            )
    return wanted, expect if isinstance(expect, str) else matching_variant(wanted)
