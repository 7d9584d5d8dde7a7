"""Differentiable Siamese Augmentation (DSA) in plain PyTorch.

Distillation methods (MTT, DATM, DataDAM) augment the synthetic images inside the
training loop, so every operation must be differentiable with respect to the images.
When the real and synthetic batches are compared, they must see the *same* random
transform ("Siamese"), so sampling and applying are separate steps: draw a
`DSAParams` once, then apply it to any number of batches.

All randomness comes from an explicit CPU `torch.Generator`, so a run is reproduced
(or resumed) by saving and restoring `generator.get_state()`.

Only mode 'S' is implemented: each call picks one strategy group uniformly at random.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ddforge.errors import ConfigError

__all__ = ["DSAConfig", "DSAParams", "GROUPS", "OPS", "sample_dsa_params", "apply_dsa", "dsa"]


@dataclass(frozen=True)
class DSAConfig:
    """Strategy and magnitudes; the defaults are those used by DSA/MTT/DATM."""

    strategy: str = "color_crop_cutout_flip_scale_rotate"
    scale_ratio: float = 1.2
    rotate_degrees: float = 15.0
    crop_ratio: float = 0.125
    cutout_ratio: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


@dataclass(frozen=True, eq=False)
class DSAParams:
    """One drawn augmentation: the chosen group and each of its ops' parameters.

    Tensors have a leading dimension of 1 when `shared` (broadcast to any batch, so the
    real and synthetic batches get the same transform) and `batch` otherwise.
    They live on the CPU; `apply_dsa` moves them to the images' device and dtype.
    """

    group: str
    values: dict[str, torch.Tensor]  # op name -> parameters, in application order
    shared: bool


# --- sampling: one function per op, returning CPU tensors with leading dim n -----------

Sampler = Callable[[DSAConfig, int, int, int, torch.Generator], torch.Tensor]


def _uniform(n: int, g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand((n, *shape), generator=g, dtype=torch.float64)


def _sample_flip(cfg: DSAConfig, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    return _uniform(n, g) < 0.5  # (n,) bool: flip this sample horizontally


def _sample_scale(cfg: DSAConfig, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    lo, hi = 1.0 / cfg.scale_ratio, cfg.scale_ratio
    return _uniform(n, g, 2) * (hi - lo) + lo  # (n, 2): sx, sy


def _sample_rotate(cfg: DSAConfig, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    return (_uniform(n, g) - 0.5) * 2.0 * math.radians(cfg.rotate_degrees)  # (n,) radians


def _crop_shift(cfg: DSAConfig, side: int) -> int:
    return int(side * cfg.crop_ratio + 0.5)


def _sample_crop(cfg: DSAConfig, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    sy, sx = _crop_shift(cfg, h), _crop_shift(cfg, w)
    dy = torch.randint(-sy, sy + 1, (n,), generator=g)
    dx = torch.randint(-sx, sx + 1, (n,), generator=g)
    return torch.stack([dy, dx], dim=1)  # (n, 2) int64: output[i, j] = input[i + dy, j + dx]


def _cutout_size(cfg: DSAConfig, side: int) -> int:
    return int(side * cfg.cutout_ratio + 0.5)


def _sample_cutout(cfg: DSAConfig, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    ch, cw = _cutout_size(cfg, h), _cutout_size(cfg, w)
    cy = torch.randint(0, h, (n,), generator=g)
    cx = torch.randint(0, w, (n,), generator=g)
    y0, x0 = cy - ch // 2, cx - cw // 2
    # (n, 4) int64 half-open box [y0, y1) x [x0, x1); may stick out of the image (clipped).
    return torch.stack([y0, y0 + ch, x0, x0 + cw], dim=1)


def _sample_brightness(cfg: DSAConfig, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    return (_uniform(n, g) - 0.5) * cfg.brightness  # additive offset


def _sample_saturation(cfg: DSAConfig, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    return _uniform(n, g) * cfg.saturation  # factor around the channel mean


def _sample_contrast(cfg: DSAConfig, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    return _uniform(n, g) + cfg.contrast  # factor around the image mean


# --- applying: one function per op, differentiable in x --------------------------------


def _per_sample(p: torch.Tensor) -> torch.Tensor:
    return p.reshape(-1, 1, 1, 1)


def _batch_of(p: torch.Tensor, n: int) -> torch.Tensor:
    return p.expand(n, *p.shape[1:])


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    theta = _batch_of(theta, x.shape[0])
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _apply_flip(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return torch.where(_per_sample(p), torch.flip(x, dims=[3]), x)


def _apply_scale(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(p[:, 0])
    theta = torch.stack(
        [torch.stack([p[:, 0], zero, zero], 1), torch.stack([zero, p[:, 1], zero], 1)], 1
    )
    return _affine(x, theta)


def _apply_rotate(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    c, s, zero = torch.cos(p), torch.sin(p), torch.zeros_like(p)
    theta = torch.stack([torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1)], 1)
    return _affine(x, theta)


def _apply_crop(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Integer translation with zero fill: pad, then gather (exact, and differentiable)."""
    n, _, h, w = x.shape
    pad = int(p.abs().max().item()) if p.numel() else 0
    xp = F.pad(x, (pad, pad, pad, pad))
    p = _batch_of(p, n)
    rows = torch.arange(h, device=x.device)[None, :] + p[:, :1] + pad  # (n, h)
    cols = torch.arange(w, device=x.device)[None, :] + p[:, 1:] + pad  # (n, w)
    b = torch.arange(n, device=x.device)[:, None, None]
    out = xp[b, :, rows[:, :, None], cols[:, None, :]]  # advanced dims first: (n, h, w, c)
    return out.permute(0, 3, 1, 2)


def _apply_cutout(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    _, _, h, w = x.shape
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= p[:, 0:1]) & (ys < p[:, 1:2])  # (n, h)
    in_x = (xs >= p[:, 2:3]) & (xs < p[:, 3:4])  # (n, w)
    keep = ~(in_y[:, :, None] & in_x[:, None, :])
    return x * keep[:, None].to(x.dtype)


def _apply_brightness(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return x + _per_sample(p)


def _apply_saturation(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    m = x.mean(dim=1, keepdim=True)
    return (x - m) * _per_sample(p) + m


def _apply_contrast(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    m = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - m) * _per_sample(p) + m


Applier = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

OPS: dict[str, tuple[Sampler, Applier]] = {
    "flip": (_sample_flip, _apply_flip),
    "scale": (_sample_scale, _apply_scale),
    "rotate": (_sample_rotate, _apply_rotate),
    "crop": (_sample_crop, _apply_crop),
    "cutout": (_sample_cutout, _apply_cutout),
    "brightness": (_sample_brightness, _apply_brightness),
    "saturation": (_sample_saturation, _apply_saturation),
    "contrast": (_sample_contrast, _apply_contrast),
}

#: Strategy groups that expand to several ops applied in sequence; any op name is also a group.
GROUPS: dict[str, tuple[str, ...]] = {"color": ("brightness", "saturation", "contrast")}


def _group_ops(group: str) -> tuple[str, ...]:
    if group in GROUPS:
        return GROUPS[group]
    if group in OPS:
        return (group,)
    known = sorted({*GROUPS, *OPS})
    raise ConfigError(f"unknown DSA augmentation {group!r}; known: {', '.join(known)}")


def _groups(strategy: str) -> list[str]:
    groups = [s for s in strategy.split("_") if s]
    if not groups:
        raise ConfigError(f"DSA strategy {strategy!r} names no augmentation")
    for g in groups:
        _group_ops(g)
    return groups


def sample_dsa_params(
    cfg: DSAConfig,
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator,
    shared: bool,
) -> DSAParams:
    """Draws the group choice and that group's parameters; shared=True gives one set
    broadcast to every sample (Siamese), shared=False one set per sample (MTT's seed=-1)."""
    if batch < 1 or height < 1 or width < 1:
        raise ConfigError(f"DSA needs a non-empty batch, got {batch}x{height}x{width}")
    groups = _groups(cfg.strategy)
    group = groups[int(torch.randint(len(groups), (1,), generator=generator).item())]
    n = 1 if shared else batch
    values = {op: OPS[op][0](cfg, n, height, width, generator) for op in _group_ops(group)}
    return DSAParams(group=group, values=values, shared=shared)


def apply_dsa(x: torch.Tensor, params: DSAParams) -> torch.Tensor:
    """Applies drawn parameters to an (N, C, H, W) batch, differentiably in x.

    Shared parameters work for any N; per-sample ones need N equal to the drawn batch.
    """
    if x.dim() != 4:
        raise ConfigError(f"DSA expects (N, C, H, W) images, got shape {tuple(x.shape)}")
    for op, p in params.values.items():
        if not params.shared and p.shape[0] != x.shape[0]:
            raise ConfigError(
                f"DSA parameters were drawn for {p.shape[0]} samples but the batch has {x.shape[0]}"
            )
        p = p.to(x.device) if not p.is_floating_point() else p.to(x.device, x.dtype)
        x = OPS[op][1](x, p)
    return x


def dsa(
    x: torch.Tensor, cfg: DSAConfig, generator: torch.Generator, shared: bool = False
) -> torch.Tensor:
    """Samples parameters for x and applies them (the usual one-batch call)."""
    n, _, h, w = x.shape
    return apply_dsa(x, sample_dsa_params(cfg, n, h, w, generator, shared))
