import pytest
import torch
from omegaconf import OmegaConf

from ddforge.core.sampling import check_ipc_form, resolve_ipc, select_per_class
from ddforge.errors import ConfigError

FORMS = "ipc must be a positive integer, a list of them (one per class) or a mapping {class name: count}; got "


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


@pytest.mark.parametrize("ipc, given", [
    ("abc", "the string 'abc'"),  # `--params ipc=abc`: a string is iterable, once read as 3 entries
    ("12", "the string '12'"),
    (True, "the boolean True"),  # bool is an int subclass
    (1.5, "the float 1.5"),
    (2.0, "the float 2.0"),
    (0, "the integer 0"),
    (-1, "the integer -1"),
    (None, "null"),
    ([], "an empty list"),
    ({}, "an empty mapping"),
    ([2, "1", 3], "the list [2, '1', 3], whose item 1 is the string '1'"),
    ([2, True, 3], "the list [2, True, 3], whose item 1 is the boolean True"),
    ({"COVID": 2, "Normal": 0.5}, "the mapping {'COVID': 2, 'Normal': 0.5}, whose class 'Normal' is the float 0.5"),
    ({"COVID:2": None}, "the mapping {'COVID:2': None}, whose class 'COVID:2' is null"),  # `ipc={COVID:2}`
])
def test_ipc_of_the_wrong_form_says_which_form_was_given(ipc, given):
    with pytest.raises(ConfigError) as e:
        check_ipc_form(ipc)
    assert str(e.value) == FORMS + given
    with pytest.raises(ConfigError) as e:
        resolve_ipc(ipc, ["COVID", "Normal", "Viral Pneumonia"])
    assert str(e.value) == FORMS + given


def test_ipc_from_omegaconf_list_and_dict_configs_is_accepted():
    conf = OmegaConf.create({"as_list": [3, 1], "by_class": {"Normal": 2, "COVID": 5}})
    assert resolve_ipc(conf.as_list, ["COVID", "Normal"]) == [3, 1]
    assert resolve_ipc(conf.by_class, ["COVID", "Normal"]) == [5, 2]
    with pytest.raises(ConfigError, match=r"unknown classes \[0, 'Covid'\], missing \['COVID'\]"):  # YAML `0:` keys
        resolve_ipc(OmegaConf.create({0: 1, "Covid": 1, "Normal": 2}), ["COVID", "Normal"])


def test_a_class_smaller_than_its_ipc_is_a_clear_error():
    labels = torch.tensor([0] * 5 + [1] * 2)
    idx = select_per_class(labels, [3, 2], torch.Generator().manual_seed(0))
    assert labels[idx].tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(ConfigError, match="'Normal' has only 2 training images but ipc asks for 3"):
        select_per_class(labels, [3, 3], torch.Generator(), ["COVID", "Normal"])
