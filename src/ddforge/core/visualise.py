"""Pictures of (synthetic) image sets: a per-class grid, closest pairs, importance bars.

Pure functions with no Kedro or pyplot state. Figures are built with
``matplotlib.figure.Figure`` and an explicit Agg canvas instead of ``pyplot``, so
nothing here selects or touches a GUI backend (safe on headless workers, in
threads, and whether or not the caller already imported pyplot), and figures are
not kept alive by pyplot's global registry: they are freed like any other object.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["image_grid", "importance_bar_chart", "pair_grid"]

# Values this far outside [0, 1] mean the images are not in display space
# (e.g. still normalised); smaller excursions are just clipped.
_RANGE_TOLERANCE = 1e-2
# Grid geometry in inches. Cells keep a fixed size (about what the old layout
# drew) and margins are sized from measured text, so names never depend on the
# figure happening to be large enough to hold them.
_CELL_INCHES = 0.8
_GAP_INCHES = 0.05
_PAD_INCHES = 0.08
_NAME_FONTSIZE = 9
_NAME_PAD_POINTS = 5.0  # title baseline above the image; leaves room for descenders
_LABEL_PAD_POINTS = 4.0  # row label's gap to the left of its first image


def image_grid(
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    max_per_class: int = 10,
    *,
    title: str | None = None,
) -> Figure:
    """Draw up to ``max_per_class`` images per class, grouped by class in index order.

    With several images per class each class gets one row, labelled on the left.
    With one image per class (IPC 1) a single column would be a tall, mostly empty
    strip, so the classes wrap into a near-square grid of cells, each titled with
    its class name. Either way the margins are measured from the rendered names and
    title, so whole names stay inside the figure at any length. Classes with no
    images are left out, so a partial set still gives a compact picture.

    Args:
        images: Float ``[N, C, H, W]`` with ``C`` 1 (grayscale) or 3 (RGB), in
            display space (roughly ``[0, 1]``). If the grid's values stray outside
            ``[0, 1]`` they are min-max rescaled over the whole grid (keeping the
            relative contrast between images), then clipped to ``[0, 1]``.
        labels: Hard class indices ``[N]`` or soft labels / logits ``[N, K]``
            (argmax is used).
        class_names: Name for each class index; indices beyond it are shown as
            numbers.
        max_per_class: Maximum images shown per class.
        title: Optional figure title.

    Returns:
        A ``Figure`` with ``rows * cols`` axes (unused cells are blank).

    Raises:
        ValueError: On malformed shapes or ``max_per_class < 1``.
    """
    if max_per_class < 1:
        raise ValueError(f"max_per_class must be >= 1, got {max_per_class}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"images must be [N, C, H, W] with C in (1, 3), got shape {tuple(images.shape)}"
        )
    hard = _hard_labels(labels)
    if hard.shape[0] != images.shape[0]:
        raise ValueError(
            f"{images.shape[0]} images but {hard.shape[0]} labels; they must match"
        )

    classes = sorted(int(c) for c in torch.unique(hard).tolist())
    selected = [
        torch.nonzero(hard == c).flatten()[:max_per_class].tolist() for c in classes
    ]
    names = [class_names[c] if 0 <= c < len(class_names) else str(c) for c in classes]
    per_class = max((len(idx) for idx in selected), default=1)

    shown = [i for idx in selected for i in idx]
    pixels = _to_display_range(images.detach().to("cpu", torch.float32), shown)

    fig = Figure()
    FigureCanvasAgg(fig)
    name_w, name_h = _text_inches(fig, names, fontsize=_NAME_FONTSIZE)
    title_w, title_h = _text_inches(fig, [title] if title else [], fontsize="large")
    top = _PAD_INCHES + (title_h + _PAD_INCHES if title else 0.0)
    min_width = title_w + 2 * _PAD_INCHES

    if per_class == 1 and len(classes) > 1:
        cell_w = max(_CELL_INCHES, name_w)
        gap_h = name_h + _NAME_PAD_POINTS / 72 + _GAP_INCHES
        n_cols = _near_square_columns(
            len(classes), cell_w + _PAD_INCHES, _CELL_INCHES + gap_h
        )
        axes = _grid_axes(
            fig,
            (math.ceil(len(classes) / n_cols), n_cols),
            (cell_w, _CELL_INCHES),
            (_PAD_INCHES, gap_h),
            left=_PAD_INCHES,
            top=top + gap_h,
            min_width=min_width,
        )
        for k, (idx, name) in enumerate(zip(selected, names, strict=True)):
            ax = axes[divmod(k, n_cols)]
            _show(ax, pixels[idx[0]])
            ax.set_title(name, fontsize=_NAME_FONTSIZE, pad=_NAME_PAD_POINTS)
    else:
        axes = _grid_axes(
            fig,
            (max(len(classes), 1), per_class),
            (_CELL_INCHES, _CELL_INCHES),
            (_GAP_INCHES, _GAP_INCHES),
            left=name_w + _LABEL_PAD_POINTS / 72 + _PAD_INCHES,
            top=top,
            min_width=min_width,
        )
        for row, (idx, name) in enumerate(zip(selected, names, strict=True)):
            for col, index in enumerate(idx):
                _show(axes[row, col], pixels[index])
            axes[row, 0].set_ylabel(
                name,
                rotation=0,
                ha="right",
                va="center",
                fontsize=_NAME_FONTSIZE,
                labelpad=_LABEL_PAD_POINTS,
            )

    if title:
        fig.suptitle(
            title, fontsize="large", y=1.0 - _PAD_INCHES / fig.get_figheight(), va="top"
        )
    return fig


def importance_bar_chart(names: Sequence[str], weights: torch.Tensor, title: str = "",
                         spread: torch.Tensor | None = None) -> Figure:
    """IADD's learned importance, one bar per parameter tensor (1 = MTT's uniform weighting); `spread`
    (one (low, high) row per tensor) draws the range of the tensor's element weights over its bar."""
    fig = Figure(figsize=(max(6.0, 0.35 * len(names)), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    values = weights.detach().float().cpu().tolist()
    ax.bar(range(len(values)), values, color=["tab:blue" if v >= 1 - 1e-6 else "tab:orange" for v in values])
    if spread is not None:
        low, high = spread.detach().float().cpu().T
        mean = torch.tensor(values)
        ax.errorbar(range(len(values)), values, yerr=torch.stack([mean - low, high - mean]).clamp_min(0).numpy(),
                    fmt="none", ecolor="black", capsize=3, label="elements, 5th to 95th percentile")
        ax.legend(fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("mean importance weight")
    ax.set_title(title or "learned importance per parameter tensor")
    fig.tight_layout()
    return fig


def pair_grid(top: torch.Tensor, bottom: torch.Tensor, captions: Sequence[str], title: str = "") -> Figure:
    """Two rows: synthetic images above, their nearest real images below (display space, [0, 1])."""
    n = top.shape[0]
    fig = Figure(figsize=(max(2.0, 1.6 * n), 3.6))
    FigureCanvasAgg(fig)
    for row, images in enumerate((top, bottom)):
        for k in range(n):
            ax = fig.add_subplot(2, n, row * n + k + 1)
            img = images[k].detach().float().clamp(0, 1).cpu()
            if img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(captions[k], fontsize=7)
        fig.axes[row * n].set_ylabel("synthetic" if row == 0 else "nearest real", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def _hard_labels(labels: torch.Tensor) -> torch.Tensor:
    """Class indices ``[N]`` from hard ``[N]`` or soft ``[N, K]`` labels."""
    labels = labels.detach().cpu()
    if labels.ndim == 2:
        return labels.argmax(dim=1)
    if labels.ndim == 1:
        return labels.round().long() if labels.is_floating_point() else labels.long()
    raise ValueError(f"labels must be [N] or [N, K], got shape {tuple(labels.shape)}")


def _to_display_range(pixels: torch.Tensor, shown: list[int]) -> torch.Tensor:
    """Rescale by the shown images' global min/max if out of ``[0, 1]``, then clip."""
    if not shown:
        return pixels
    visible = pixels[shown]
    finite = visible[torch.isfinite(visible)]
    if finite.numel() == 0:
        return torch.zeros_like(pixels)
    low, high = float(finite.min()), float(finite.max())
    if low < -_RANGE_TOLERANCE or high > 1.0 + _RANGE_TOLERANCE:
        pixels = (pixels - low) / max(high - low, 1e-12)
    return torch.nan_to_num(pixels, nan=0.0).clamp(0.0, 1.0)


def _text_inches(
    fig: Figure, texts: Sequence[str], **props: object
) -> tuple[float, float]:
    """Widest and tallest of ``texts`` in inches, as this figure's renderer draws them.

    Measuring the real glyphs (not a per-character guess) is what lets margins fit
    any name; text size in inches does not depend on the figure size or dpi.
    """
    if not texts:
        return 0.0, 0.0
    renderer = fig.canvas.get_renderer()
    probe = fig.text(0, 0, "", **props)
    width = height = 0.0
    for text in texts:
        probe.set_text(text)
        box = probe.get_window_extent(renderer)
        width, height = max(width, box.width), max(height, box.height)
    probe.remove()
    return width / fig.dpi, height / fig.dpi


def _near_square_columns(n: int, cell_w: float, cell_h: float) -> int:
    """Column count whose ``n``-cell grid comes closest to a 1:1 aspect ratio."""
    return min(
        range(1, n + 1),
        key=lambda cols: abs(math.log(cols * cell_w / (math.ceil(n / cols) * cell_h))),
    )


def _grid_axes(
    fig: Figure,
    shape: tuple[int, int],
    cell: tuple[float, float],
    gap: tuple[float, float],
    *,
    left: float,
    top: float,
    min_width: float,
) -> np.ndarray:
    """Size ``fig`` around a grid of fixed-size cells and return its (blank) axes.

    Margins are given in inches so they hold exactly the measured labels however
    many cells there are; a figure widened for a long title keeps the grid centred.
    """
    (n_rows, n_cols), (cell_w, cell_h), (gap_w, gap_h) = shape, cell, gap
    grid_w = n_cols * cell_w + (n_cols - 1) * gap_w
    extra = max(0.0, min_width - (left + grid_w + _PAD_INCHES)) / 2
    left, right = left + extra, _PAD_INCHES + extra
    width = left + grid_w + right
    height = top + n_rows * cell_h + (n_rows - 1) * gap_h + _PAD_INCHES
    fig.set_size_inches(width, height)
    axes = fig.subplots(
        n_rows,
        n_cols,
        squeeze=False,
        gridspec_kw={
            "left": left / width,
            "right": 1.0 - right / width,
            "top": 1.0 - top / height,
            "bottom": _PAD_INCHES / height,
            "wspace": gap_w / cell_w,
            "hspace": gap_h / cell_h,
        },
    )
    for ax in axes.flat:
        ax.axis("off")
    return axes


def _show(ax: Axes, image: torch.Tensor) -> None:
    """Draw one ``[C, H, W]`` image in ``[0, 1]``; the axis stays on (bare) so a label can show."""
    ax.axis("on")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if image.shape[0] == 1:
        ax.imshow(image[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(image.permute(1, 2, 0).numpy())
