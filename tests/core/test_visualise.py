"""Tests for the image-grid visualisation helpers."""

from __future__ import annotations

import io

import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from ddforge.core.visualise import image_grid

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["zero", "one", "two", "three"]
FASHION = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
# 24 characters of the widest glyph: the worst case a name may reach.
LONG = [f"{'W' * 20} #{i:02d}" for i in range(10)]
SAVE_DPI = 120  # conf/base/catalog.yml saves the grid with MatplotlibDataset at this dpi


def _geometry(fig: Figure) -> tuple[int, int]:
    rows, cols, _, _ = fig.axes[0].get_subplotspec().get_geometry()
    return rows, cols


def _row_labels(fig: Figure) -> list[str]:
    rows, cols = _geometry(fig)
    return [fig.axes[r * cols].get_ylabel() for r in range(rows)]


def test_one_row_per_present_class_in_index_order() -> None:
    torch.manual_seed(0)
    images = torch.rand(7, 1, 8, 8)
    labels = torch.tensor([3, 1, 3, 1, 3, 1, 1])  # class 0 and 2 absent
    fig = image_grid(images, labels, NAMES, max_per_class=10)

    assert isinstance(fig, Figure)
    assert _geometry(fig) == (2, 4)  # classes {1, 3}; class 1 has 4 images
    assert len(fig.axes) == 2 * 4
    assert _row_labels(fig) == ["one", "three"]
    # Cells with an image: 4 for class 1, 3 for class 3.
    assert sum(len(ax.images) for ax in fig.axes) == 7
    assert [len(ax.images) for ax in fig.axes[4:]] == [1, 1, 1, 0]


def test_max_per_class_limits_columns() -> None:
    images = torch.rand(12, 1, 5, 5)
    labels = torch.tensor([0] * 6 + [2] * 6)
    fig = image_grid(images, labels, NAMES, max_per_class=3)
    assert _geometry(fig) == (2, 3)
    assert sum(len(ax.images) for ax in fig.axes) == 6


def test_soft_labels_use_argmax() -> None:
    images = torch.rand(4, 1, 6, 6)
    soft = torch.tensor(
        [[0.1, 0.7, 0.1, 0.1], [0.8, 0.1, 0.05, 0.05], [0.0, 2.0, -1.0, 0.0], [5.0, 0, 0, 0]]
    )
    fig = image_grid(images, soft, NAMES)
    assert _geometry(fig) == (2, 2)
    assert _row_labels(fig) == ["zero", "one"]


def test_rgb_input() -> None:
    images = torch.rand(6, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    fig = image_grid(images, labels, NAMES)
    assert _geometry(fig) == (3, 2)
    first = fig.axes[0].images[0].get_array()
    assert first.shape == (8, 8, 3)


def test_out_of_range_values_are_rescaled_into_unit_interval() -> None:
    images = torch.randn(4, 3, 4, 4) * 3  # e.g. still-normalised images
    fig = image_grid(images, torch.tensor([0, 0, 1, 1]), NAMES)
    arrays = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert min(float(a.min()) for a in arrays) == pytest.approx(0.0, abs=1e-6)
    assert max(float(a.max()) for a in arrays) == pytest.approx(1.0, abs=1e-6)


def test_png_bytes_decode() -> None:
    fig = image_grid(torch.rand(6, 1, 16, 16), torch.tensor([0, 0, 0, 1, 1, 1]), NAMES)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    data = buffer.getvalue()
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        width, height = img.size
    # 3 columns x 2 rows at ~100 px per cell, plus labels; tight bbox trims margins.
    assert 150 < width < 1000
    assert 100 < height < 800
    assert width > height


def test_unknown_class_index_falls_back_to_number() -> None:
    fig = image_grid(torch.rand(1, 1, 4, 4), torch.tensor([9]), NAMES)
    assert _row_labels(fig) == ["9"]


@pytest.mark.parametrize(
    ("images", "labels"),
    [
        (torch.rand(2, 2, 4, 4), torch.tensor([0, 1])),  # 2 channels
        (torch.rand(2, 4, 4), torch.tensor([0, 1])),  # missing channel dim
        (torch.rand(3, 1, 4, 4), torch.tensor([0, 1])),  # count mismatch
    ],
)
def test_malformed_inputs_raise(images: torch.Tensor, labels: torch.Tensor) -> None:
    with pytest.raises(ValueError):
        image_grid(images, labels, NAMES)


def test_does_not_touch_pyplot_state() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    image_grid(torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), NAMES)
    assert plt.get_fignums() == before


def _class_grid(names: list[str], ipc: int) -> Figure:
    labels = torch.arange(len(names)).repeat_interleave(ipc)
    fig = image_grid(torch.rand(len(labels), 1, 28, 28), labels, names, title=f"dm (IPC {ipc})")
    fig.set_dpi(SAVE_DPI)
    fig.canvas.draw()
    return fig


def _text_boxes(fig: Figure, strings: list[str]) -> dict:
    """Display-pixel extents of the drawn text artists whose text is one of ``strings``."""
    renderer = fig.canvas.get_renderer()
    return {
        t.get_text(): t.get_window_extent(renderer)
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text() in strings
    }


def _image_boxes(fig: Figure) -> list:
    renderer = fig.canvas.get_renderer()
    return [ax.get_window_extent(renderer) for ax in fig.axes if ax.images]


@pytest.mark.parametrize("ipc", [1, 3])
@pytest.mark.parametrize("names", [FASHION, LONG], ids=["fashion", "24-chars"])
def test_class_names_are_whole_inside_the_figure(names: list[str], ipc: int) -> None:
    fig = _class_grid(names, ipc)
    title = f"dm (IPC {ipc})"
    boxes = _text_boxes(fig, [*names, title])
    assert set(boxes) == {*names, title}
    page = fig.bbox
    for text, box in boxes.items():
        inside = page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
        assert inside, f"{text!r} at {box.extents} is clipped by the figure {page.extents}"
    # Names are readable: they touch neither each other nor any image.
    name_boxes = [boxes[n] for n in names]
    for i, box in enumerate(name_boxes):
        assert not any(box.overlaps(other) for other in name_boxes[i + 1 :])
        assert not any(box.overlaps(image) for image in _image_boxes(fig))


def test_one_image_per_class_fills_a_near_square_grid() -> None:
    fig = _class_grid(FASHION, ipc=1)
    width, height = fig.get_size_inches()
    assert 0.6 <= width / height <= 2.5
    # The old 1-column strip was (1 + 1) x (10 + 0.3) inches and only ~30% image.
    assert width * height < 0.75 * 2.0 * 10.3
    image_area = sum(box.width * box.height for box in _image_boxes(fig))
    assert image_area / (fig.bbox.width * fig.bbox.height) > 0.4
    # Cells keep class order, each titled with its class name.
    assert [ax.get_title() for ax in fig.axes if ax.images] == FASHION


def test_several_images_per_class_keep_one_labelled_row_per_class() -> None:
    fig = _class_grid(FASHION, ipc=3)
    assert _geometry(fig) == (10, 3)
    assert _row_labels(fig) == FASHION
    assert [len(ax.images) for ax in fig.axes] == [1] * 30
