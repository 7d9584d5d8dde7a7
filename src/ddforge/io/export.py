"""The shareable form of a synthetic set: a PNG image folder that `read_image_folder` loads back,
the exact tensors, and a manifest saying how they were made."""
from __future__ import annotations

import torch
from PIL import Image


def folder_name(class_name: str) -> str:
    """Class names become folder names; path separators cannot be part of one."""
    return class_name.replace("/", "_").replace("\\", "_").strip() or "_"


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Display-space [0, 1] floats to the uint8 pixels written to PNG (and read back exactly)."""
    return (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)


def image_partitions(images: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict[str, Image.Image]:
    """`<Class>/<Class>_<k>` -> PIL image, for a PartitionedDataset of pillow images (`.png`).

    Soft labels are exported by their argmax; the tensor file keeps them exactly.
    """
    hard = labels.argmax(1) if labels.is_floating_point() else labels
    pixels = to_uint8(images)
    counts: dict[int, int] = {}
    out = {}
    for img, label in zip(pixels, hard.tolist()):
        k = counts.get(label, 0)
        counts[label] = k + 1
        name = folder_name(class_names[label])
        array = img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
        out[f"{name}/{name}_{k:04d}"] = Image.fromarray(array, mode="L" if img.shape[0] == 1 else "RGB")
    return out
