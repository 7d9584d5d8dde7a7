"""The shareable form of a synthetic set: a PNG image folder that `read_image_folder` loads back,
the exact tensors, and a manifest saying how they were made."""
from __future__ import annotations

import torch
from PIL import Image

from ddforge.errors import ConfigError


def folder_name(class_name: str) -> str:
    """Class names become folder names; path separators cannot be part of one."""
    return class_name.replace("/", "_").replace("\\", "_").strip() or "_"


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Display-space [0, 1] floats to the uint8 pixels written to PNG (and read back exactly)."""
    return (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)


def class_folders(class_names: list[str]) -> list[str]:
    """One folder per class; two classes that would share a folder are refused (the second
    class's images would overwrite the first's)."""
    folders = [folder_name(c) for c in class_names]
    if len(set(folders)) < len(folders):
        clashes = sorted({f for f in folders if folders.count(f) > 1})
        raise ConfigError(f"class names {class_names} give clashing export folder names {clashes}; rename the classes")
    return folders


def image_partitions(pixels: torch.Tensor, labels: torch.Tensor, folders: list[str]) -> dict[str, Image.Image]:
    """`<Class>/<Class>_<k>` -> PIL image of the uint8 `pixels`, for a PartitionedDataset of `.png`.

    Soft labels are exported by their argmax; the tensor file keeps them exactly.
    """
    hard = labels.argmax(1) if labels.is_floating_point() else labels
    counts: dict[int, int] = {}
    out = {}
    for img, label in zip(pixels, hard.tolist()):
        k = counts.get(label, 0)
        counts[label] = k + 1
        name = folders[label]
        out[f"{name}/{name}_{k:04d}"] = Image.fromarray(img.permute(1, 2, 0).squeeze(-1).numpy())
    return out
