"""ConvNet family used by every method (MTT's ConvNetD3 and its relatives).

Networks are described by a plain dict (`NetworkSpec.as_dict()`), so an expert buffer can
record exactly which architecture produced it and a mismatch can be refused later.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ddforge.errors import ConfigError

NORMS = ("instancenorm", "batchnorm", "layernorm", "none")


@dataclass(frozen=True)
class NetworkSpec:
    in_channels: int
    num_classes: int
    im_size: tuple[int, int]
    width: int = 128
    depth: int = 3
    norm: str = "instancenorm"
    name: str = field(default="convnet")

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ConfigError(f"network.norm must be one of {NORMS}, got {self.norm!r}")
        if self.depth < 1 or self.width < 1:
            raise ConfigError(f"network depth and width must be positive, got {self.depth}, {self.width}")
        object.__setattr__(self, "im_size", tuple(int(s) for s in self.im_size))
        h, w = self.padded_size
        if h % (2**self.depth) or w % (2**self.depth):
            raise ConfigError(
                f"image size {self.im_size} is not divisible by 2**depth={2**self.depth}; "
                "resize the images or lower network.depth"
            )

    @property
    def first_padding(self) -> int:
        # MTT's trick for 28x28 (MNIST-like) inputs: pad 3 so the net sees 32x32.
        return 3 if self.im_size == (28, 28) else 1

    @property
    def padded_size(self) -> tuple[int, int]:
        extra = 2 * (self.first_padding - 1)
        return self.im_size[0] + extra, self.im_size[1] + extra

    @property
    def feature_dim(self) -> int:
        h, w = self.padded_size
        return self.width * (h // 2**self.depth) * (w // 2**self.depth)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["im_size"] = list(self.im_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> NetworkSpec:
        return cls(**{**d, "im_size": tuple(d["im_size"])})


def _norm_layer(kind: str, channels: int, spatial: tuple[int, int]) -> nn.Module:
    if kind == "instancenorm":
        # GroupNorm with one group per channel == instance norm with affine params (as in MTT).
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "layernorm":
        return nn.GroupNorm(1, channels, affine=True)
    return nn.Identity()


class ConvNet(nn.Module):
    """Conv3x3 -> norm -> ReLU -> AvgPool2, `depth` times, then one linear classifier."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        blocks: list[nn.Module] = []
        channels, (h, w) = spec.in_channels, spec.padded_size
        for d in range(spec.depth):
            blocks += [
                nn.Conv2d(channels, spec.width, 3, padding=spec.first_padding if d == 0 else 1),
                _norm_layer(spec.norm, spec.width, (h, w)),
                nn.ReLU(inplace=True),  # the norm's backward does not need its output: no copy
                nn.AvgPool2d(2, 2),
            ]
            channels, h, w = spec.width, h // 2, w // 2
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(spec.feature_dim, spec.num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def build_network(spec: NetworkSpec, seed: int, device: torch.device | str = "cpu") -> ConvNet:
    """A freshly initialised network whose weights depend only on `seed` (not on global RNG state)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ConvNet(spec)
    return net.to(device)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
