"""The optional perceptual loss: VGG16 feature distances, from weights the user supplies.

The network is built here (torchvision is not a dependency) with torchvision's module layout, so
its ``vgg16-397923af.pth`` state dict, or any file with the same ``features.N.*`` keys, loads
unchanged; the classifier is not needed and is ignored. Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from swintormer.checkpoint import load_state_dict_into, read_state_dict
from swintormer.errors import SwintormerError

__all__ = ["PerceptualLoss", "VGG16Features", "load_vgg16_features"]

#: torchvision's VGG16 ``features``: conv widths, "M" = 2x2 max-pool
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: indices in ``features`` of relu1_2, relu2_2, relu3_3, relu4_3
DEFAULT_TAPS = (3, 8, 15, 22)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    """VGG16's convolutional part, keys ``features.N.weight`` as torchvision, cut after the last tap."""

    def __init__(self, taps: tuple[int, ...] = DEFAULT_TAPS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in _VGG16:
            if width == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(width), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(width)
        self.taps = taps
        self.features = nn.Sequential(*layers[: max(taps) + 1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[B, 3, H, W]`` ImageNet-normalised -> the activations at ``taps``."""
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def load_vgg16_features(path: str | Path, taps: tuple[int, ...] = DEFAULT_TAPS) -> VGG16Features:
    """VGG16 features with the weights in ``path`` (frozen, eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise SwintormerError(f"VGG16 weights not found: {path} (the perceptual loss never downloads them; pass a local file)")
    net = VGG16Features(taps)
    wanted = set(net.state_dict())
    state = {k: v for k, v in read_state_dict(path).items() if k in wanted}
    load_state_dict_into(net, state, f"{path} (VGG16 features)")
    return net.eval().requires_grad_(False)


class PerceptualLoss(nn.Module):
    """Mean L1 distance of VGG16 activations of two ``[B, 3, H, W]`` images in ``[0, 1]``."""

    def __init__(self, features: VGG16Features) -> None:
        super().__init__()
        self.net = features
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "PerceptualLoss":
        super().train(mode)
        self.net.eval()  # always frozen
        return self

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a = self.net((output - self.mean) / self.std)
        with torch.no_grad():
            b = self.net((target - self.mean) / self.std)
        return sum(F.l1_loss(x, y) for x, y in zip(a, b)) / len(a)
