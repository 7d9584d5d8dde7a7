"""Pictures of (synthetic) image sets: a class-by-row grid, closest pairs, importance bars.

Pure functions with no Kedro or pyplot state. Figures are built with
``matplotlib.figure.Figure`` and an explicit Agg canvas instead of ``pyplot``, so
nothing here selects or touches a GUI backend (safe on headless workers, in
threads, and whether or not the caller already imported pyplot), and figures are
not kept alive by pyplot's global registry: they are freed like any other object.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["image_grid", "importance_bar_chart", "pair_grid"]

# Values this far outside [0, 1] mean the images are not in display space
# (e.g. still normalised); smaller excursions are just clipped.
_RANGE_TOLERANCE = 1e-2
_CELL_INCHES = 1.0


def image_grid(
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    max_per_class: int = 10,
    *,
    title: str | None = None,
) -> Figure:
    """Draw up to ``max_per_class`` images per class, one row per class present.

    Rows are ordered by class index and labelled with the class name; classes with
    no images get no row, so a partial set still gives a compact picture.

    Args:
        images: Float ``[N, C, H, W]`` with ``C`` 1 (grayscale) or 3 (RGB), in
            display space (roughly ``[0, 1]``). If the grid's values stray outside
            ``[0, 1]`` they are min-max rescaled over the whole grid (keeping the
            relative contrast between images), then clipped to ``[0, 1]``.
        labels: Hard class indices ``[N]`` or soft labels / logits ``[N, K]``
            (argmax is used).
        class_names: Name for each class index; indices beyond it are shown as
            numbers.
        max_per_class: Maximum columns (images shown per class).
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
    selected = {c: torch.nonzero(hard == c).flatten()[:max_per_class] for c in classes}
    n_rows = max(len(classes), 1)
    n_cols = max((len(idx) for idx in selected.values()), default=1)

    shown = [int(i) for idx in selected.values() for i in idx.tolist()]
    pixels = images.detach().to("cpu", torch.float32)
    pixels = _to_display_range(pixels, shown)

    fig = Figure(figsize=(n_cols * _CELL_INCHES + 1.0, n_rows * _CELL_INCHES + 0.3))
    FigureCanvasAgg(fig)
    axes = fig.subplots(
        n_rows, n_cols, squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.05}
    )
    for ax in axes.flat:
        ax.axis("off")

    for row, cls in enumerate(classes):
        for col, index in enumerate(selected[cls].tolist()):
            ax = axes[row, col]
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            image = pixels[index]
            if image.shape[0] == 1:
                ax.imshow(image[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
            else:
                ax.imshow(image.permute(1, 2, 0).numpy())
        name = class_names[cls] if 0 <= cls < len(class_names) else str(cls)
        label_ax = axes[row, 0]
        label_ax.axis("on")
        label_ax.set_xticks([])
        label_ax.set_yticks([])
        label_ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)

    if title:
        fig.suptitle(title)
    return fig


def importance_bar_chart(names: Sequence[str], weights: torch.Tensor, title: str = "") -> Figure:
    """IADD's learned importance, one bar per parameter tensor (1 = MTT's uniform weighting)."""
    fig = Figure(figsize=(max(6.0, 0.35 * len(names)), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    values = weights.detach().float().cpu().tolist()
    ax.bar(range(len(values)), values, color=["tab:blue" if v >= 1 else "tab:orange" for v in values])
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
