import pytest
import torch

from ddforge.core.sampling import resolve_ipc, select_per_class
from ddforge.errors import ConfigError


def test_ipc_as_int_list_or_dict_by_class_name():
    names = ["COVID", "Normal", "Viral Pneumonia"]
    assert resolve_ipc(2, names) == [2, 2, 2]
    assert resolve_ipc([3, 1, 2], names) == [3, 1, 2]
    assert resolve_ipc({"Normal": 1, "COVID": 4, "Viral Pneumonia": 2}, names) == [4, 1, 2]
    with pytest.raises(ConfigError, match="missing"):
        resolve_ipc({"COVID": 1}, names)
    with pytest.raises(ConfigError, match="entries for 3 classes"):
        resolve_ipc([1, 2], names)
    with pytest.raises(ConfigError, match="positive"):
        resolve_ipc([1, 0, 2], names)


def test_a_class_smaller_than_its_ipc_is_a_clear_error():
    labels = torch.tensor([0] * 5 + [1] * 2)
    idx = select_per_class(labels, [3, 2], torch.Generator().manual_seed(0))
    assert labels[idx].tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(ConfigError, match="'Normal' has only 2 training images but ipc asks for 3"):
        select_per_class(labels, [3, 3], torch.Generator(), ["COVID", "Normal"])
