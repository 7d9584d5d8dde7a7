"""Tests for Differentiable Siamese Augmentation (ddforge.core.augment)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from ddforge.core.augment import (
    GROUPS,
    OPS,
    DSAConfig,
    DSAParams,
    apply_dsa,
    dsa,
    sample_dsa_params,
)
from ddforge.errors import ConfigError

CFG = DSAConfig()
DEFAULT_GROUPS = CFG.strategy.split("_")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int = 1, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    """A non-trivial image (no symmetry, no flat regions) repeated n times."""
    img = torch.rand((1, c, h, w), generator=_gen(seed)) + torch.linspace(0, 1, w)
    return img.repeat(n, 1, 1, 1)


def _cfg(strategy: str) -> DSAConfig:
    return replace(CFG, strategy=strategy)


def _fixed(op: str, value: torch.Tensor) -> DSAParams:
    return DSAParams(group=op, values={op: value}, shared=False)


# --- 1. Siamese sharing and reproducibility --------------------------------------------


def test_shared_params_give_identical_outputs_for_real_and_synthetic_batches() -> None:
    g = _gen(0)
    real, syn = _images(5), _images(3)  # same image, different batch sizes
    seen = set()
    for _ in range(40):
        params = sample_dsa_params(CFG, 5, 16, 16, g, shared=True)
        seen.add(params.group)
        out_real, out_syn = apply_dsa(real, params), apply_dsa(syn, params)
        assert out_real.shape == real.shape and out_syn.shape == syn.shape
        torch.testing.assert_close(out_syn, out_real[:3], rtol=0, atol=0)
        # One parameter set for the whole batch: every sample is transformed alike.
        torch.testing.assert_close(out_real, out_real[:1].expand_as(out_real), rtol=0, atol=0)
    assert seen == set(DEFAULT_GROUPS)


@pytest.mark.parametrize("shared", [True, False])
def test_same_seed_reproduces_and_other_seed_differs(shared: bool) -> None:
    x = _images(4)
    g1, g2, g3 = _gen(123), _gen(123), _gen(124)
    outs1 = [dsa(x, CFG, g1, shared=shared) for _ in range(8)]
    outs2 = [dsa(x, CFG, g2, shared=shared) for _ in range(8)]
    outs3 = [dsa(x, CFG, g3, shared=shared) for _ in range(8)]
    for a, b in zip(outs1, outs2):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, c) for a, c in zip(outs1, outs3))


def test_generator_state_resumes_the_stream_and_global_rng_is_untouched() -> None:
    x = _images(2)
    g = _gen(7)
    dsa(x, CFG, g)
    state = g.get_state()
    global_state = torch.get_rng_state()
    expected = [dsa(x, CFG, g) for _ in range(5)]
    assert torch.equal(torch.get_rng_state(), global_state)
    resumed = torch.Generator()
    resumed.set_state(state)
    for e in expected:
        torch.testing.assert_close(dsa(x, CFG, resumed), e, rtol=0, atol=0)


# --- 2. Per-sample parameters ----------------------------------------------------------


@pytest.mark.parametrize("strategy", ["rotate", "scale", "crop", "cutout", "color", "flip"])
def test_per_sample_mode_differs_across_identical_samples(strategy: str) -> None:
    n = 16  # flip: all 16 equal has probability 2**-15
    x = _images(n)
    params = sample_dsa_params(_cfg(strategy), n, 16, 16, _gen(3), shared=False)
    assert all(v.shape[0] == n for v in params.values.values())
    out = apply_dsa(x, params)
    assert any(not torch.equal(out[0], out[i]) for i in range(1, n))
    if strategy == "rotate":
        assert not torch.equal(out[0], out[1])


def test_per_sample_params_reject_another_batch_size() -> None:
    params = sample_dsa_params(_cfg("rotate"), 4, 16, 16, _gen(0), shared=False)
    with pytest.raises(ConfigError, match="4 samples"):
        apply_dsa(_images(3), params)


# --- 3. Each op alone: differentiable, and does what it says ---------------------------


@pytest.mark.parametrize("op", sorted(OPS))
def test_each_op_is_differentiable(op: str) -> None:
    x = _images(6).requires_grad_(True)
    out = dsa(x, _cfg(op), _gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    weights = torch.rand(out.shape, generator=_gen(2))
    (out * weights).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_flip_is_per_sample_identity_or_horizontal_flip() -> None:
    x = _images(16)
    out = dsa(x, _cfg("flip"), _gen(5))
    flipped = [torch.equal(o, torch.flip(xi, dims=[2])) for o, xi in zip(out, x)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert any(flipped) and any(kept)


def test_brightness_adds_a_per_sample_constant_within_half() -> None:
    x = _images(32)
    diff = (dsa(x, _cfg("brightness"), _gen(5)) - x).flatten(1)
    assert (diff.max(1).values - diff.min(1).values).max() < 1e-5
    assert diff.abs().max() <= 0.5
    assert diff[:, 0].std() > 0.1  # genuinely random, per sample


def test_saturation_and_contrast_keep_their_means() -> None:
    x = _images(8)
    sat = dsa(x, _cfg("saturation"), _gen(5))
    torch.testing.assert_close(sat.mean(1), x.mean(1))
    assert not torch.allclose(sat, x)
    con = dsa(x, _cfg("contrast"), _gen(5))
    torch.testing.assert_close(con.mean((1, 2, 3)), x.mean((1, 2, 3)))
    assert not torch.allclose(con, x)
    grey = _images(4, c=1)
    torch.testing.assert_close(dsa(grey, _cfg("saturation"), _gen(5)), grey)


def test_cutout_zeroes_a_square_of_half_the_side() -> None:
    h = w = 16
    side = 8  # cutout_ratio 0.5
    x = torch.ones(64, 1, h, w)
    params = sample_dsa_params(_cfg("cutout"), 64, h, w, _gen(9), shared=False)
    box = params.values["cutout"]
    assert ((box[:, 1] - box[:, 0]) == side).all() and ((box[:, 3] - box[:, 2]) == side).all()
    out = apply_dsa(x, params)
    interior = 0
    for o, (y0, y1, x0, x1) in zip(out[:, 0], box.tolist()):
        expected = torch.ones(h, w)
        expected[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = 0
        assert torch.equal(o, expected)
        interior += int(y0 >= 0 and x0 >= 0 and y1 <= h and x1 <= w)
        if y0 >= 0 and x0 >= 0 and y1 <= h and x1 <= w:
            assert int((o == 0).sum()) == side * side
    assert interior > 0


def test_crop_translates_by_integer_pixels_with_zero_fill() -> None:
    x = _images(32)
    params = sample_dsa_params(_cfg("crop"), 32, 16, 16, _gen(4), shared=False)
    shifts = params.values["crop"]
    assert shifts.abs().max() <= 2  # 0.125 * 16
    assert len({tuple(s) for s in shifts.tolist()}) > 1
    out = apply_dsa(x, params)
    for o, xi, (dy, dx) in zip(out, x, shifts.tolist()):
        expected = torch.zeros_like(xi)
        ys, xs = slice(max(0, -dy), min(16, 16 - dy)), slice(max(0, -dx), min(16, 16 - dx))
        expected[:, ys, xs] = xi[:, ys.start + dy : ys.stop + dy, xs.start + dx : xs.stop + dx]
        assert torch.equal(o, expected)


def test_scale_and_rotate_identity_and_quarter_turn() -> None:
    x = _images(2, h=9, w=9)
    torch.testing.assert_close(apply_dsa(x, _fixed("scale", torch.ones(2, 2))), x)
    torch.testing.assert_close(apply_dsa(x, _fixed("rotate", torch.zeros(2))), x)
    quarter = apply_dsa(x, _fixed("rotate", torch.full((2,), math.pi / 2)))
    assert any(
        torch.allclose(quarter, torch.rot90(x, k, dims=(2, 3)), atol=1e-5) for k in (1, -1)
    )


def test_sampled_magnitudes_stay_in_their_ranges() -> None:
    g = _gen(11)
    sc = sample_dsa_params(_cfg("scale"), 500, 8, 8, g, shared=False).values["scale"]
    assert sc.min() >= 1 / 1.2 and sc.max() <= 1.2
    rot = sample_dsa_params(_cfg("rotate"), 500, 8, 8, g, shared=False).values["rotate"]
    assert rot.abs().max() <= math.radians(15) and rot.abs().max() > math.radians(12)
    col = sample_dsa_params(_cfg("color"), 500, 8, 8, g, shared=False).values
    assert 0 <= col["saturation"].min() and col["saturation"].max() <= 2
    assert 0.5 <= col["contrast"].min() and col["contrast"].max() <= 1.5


# --- 4. Numerical gradient check -------------------------------------------------------


GRADCHECK_PARAMS = {
    "scale": torch.tensor([[1.13, 0.87], [0.9, 1.1]]),
    "rotate": torch.tensor([0.21, -0.17]),
    "brightness": torch.tensor([0.3, -0.2]),
    "saturation": torch.tensor([1.7, 0.4]),
    "contrast": torch.tensor([0.6, 1.4]),
    "crop": torch.tensor([[1, -1], [0, 2]]),
    "cutout": torch.tensor([[1, 3, 0, 2], [-1, 1, 3, 5]]),
    "flip": torch.tensor([True, False]),
}


@pytest.mark.parametrize("op", sorted(GRADCHECK_PARAMS))
def test_gradcheck(op: str) -> None:
    assert set(GRADCHECK_PARAMS) == set(OPS)
    x = torch.rand((2, 3, 5, 5), generator=_gen(0), dtype=torch.float64, requires_grad=True)
    params = _fixed(op, GRADCHECK_PARAMS[op])
    assert torch.autograd.gradcheck(lambda t: apply_dsa(t, params), (x,))


# --- 5. Mode 'S' group choice ----------------------------------------------------------


def test_mode_s_picks_groups_roughly_uniformly() -> None:
    g = _gen(2024)
    draws = 1800
    counts = dict.fromkeys(DEFAULT_GROUPS, 0)
    for _ in range(draws):
        counts[sample_dsa_params(CFG, 1, 8, 8, g, shared=True).group] += 1
    expected = draws / len(counts)
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 25.0, counts  # df=5; p(chi2 > 25) ~ 1e-4 under uniformity


def test_color_group_applies_brightness_then_saturation_then_contrast() -> None:
    g = _gen(6)
    params = sample_dsa_params(_cfg("color"), 4, 16, 16, g, shared=False)
    assert params.group == "color"
    assert tuple(params.values) == GROUPS["color"] == ("brightness", "saturation", "contrast")
    x = _images(4)
    v = {k: t.float().view(-1, 1, 1, 1) for k, t in params.values.items()}
    y = x + v["brightness"]
    m = y.mean(1, keepdim=True)
    y = (y - m) * v["saturation"] + m
    m = y.mean((1, 2, 3), keepdim=True)
    y = (y - m) * v["contrast"] + m
    torch.testing.assert_close(apply_dsa(x, params), y)


def test_unknown_strategy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown DSA augmentation 'blur'"):
        dsa(_images(1), _cfg("flip_blur"), _gen(0))
    with pytest.raises(ConfigError):
        dsa(_images(1), _cfg(""), _gen(0))
