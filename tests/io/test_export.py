"""The shareable PNG folder: one folder per class, exact pixels, no image lost to a name clash."""
import numpy as np
import pytest
import torch

from ddforge.errors import ConfigError
from ddforge.io.export import class_folders, image_partitions


def test_classes_that_would_share_a_folder_are_refused():
    with pytest.raises(ConfigError, match=r"clashing export folder names \['a_b'\]"):
        class_folders(["a/b", "a_b", "c"])
    assert class_folders(["COVID", "Viral Pneumonia", "x/y"]) == ["COVID", "Viral Pneumonia", "x_y"]


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB")])
def test_partitions_keep_exact_pixels_under_per_class_names(channels, mode):
    pixels = torch.randint(0, 256, (3, channels, 4, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = image_partitions(pixels, torch.tensor([1, 0, 1]), ["cat", "dog"])
    assert sorted(out) == ["cat/cat_0000", "dog/dog_0000", "dog/dog_0001"]
    image = out["dog/dog_0001"]
    assert image.mode == mode
    np.testing.assert_array_equal(np.asarray(image).reshape(4, 5, channels), pixels[2].permute(1, 2, 0).numpy())
