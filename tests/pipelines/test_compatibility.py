"""Artefacts made for other data or another network are refused with a message saying what differs."""
import pytest
import torch

from ddforge.core.networks import NetworkSpec
from ddforge.errors import IncompatibleArtefactError
from ddforge.pipelines.evaluate.nodes import evaluate_synthetic_set
from ddforge.pipelines.provenance import check_buffer

SPEC = NetworkSpec(1, 10, (28, 28), width=8, depth=2)


def meta(**overrides):
    return {"name": "expert_000", "network": SPEC.as_dict(), "data_fingerprint": "abc", "epochs": 6, **overrides}


def test_matching_buffer_is_accepted():
    check_buffer([meta()], SPEC, "abc", needed_epochs=6)


@pytest.mark.parametrize(
    ("other", "needle"),
    [
        (NetworkSpec(1, 10, (28, 28), width=16, depth=2), "network"),     # architecture
        (NetworkSpec(1, 10, (32, 32), width=8, depth=2), "network"),      # resolution
        (NetworkSpec(3, 10, (28, 28), width=8, depth=2), "network"),      # channels
    ],
)
def test_buffer_for_another_network_is_refused(other, needle):
    with pytest.raises(IncompatibleArtefactError, match=needle):
        check_buffer([meta(network=other.as_dict())], SPEC, "abc", needed_epochs=6)


def test_buffer_for_other_data_or_too_short_is_refused():
    with pytest.raises(IncompatibleArtefactError, match="trained on data"):
        check_buffer([meta(data_fingerprint="zzz")], SPEC, "abc", needed_epochs=6)
    with pytest.raises(IncompatibleArtefactError, match="has 6 epochs"):
        check_buffer([meta()], SPEC, "abc", needed_epochs=8)
    with pytest.raises(IncompatibleArtefactError, match="empty"):
        check_buffer([], SPEC, "abc", needed_epochs=1)


def test_synthetic_set_of_another_class_list_is_refused():
    synthetic = {"method": "mtt", "network": SPEC.as_dict(), "class_names": ["cat", "dog"], "snapshots": [],
                 "images": torch.zeros(2, 1, 28, 28), "ipc": 1}
    split = {"images": torch.zeros(2, 1, 28, 28), "labels": torch.tensor([0, 1]),
             "class_names": [str(i) for i in range(10)], "data_fingerprint": "abc"}
    with pytest.raises(IncompatibleArtefactError, match="classes"):
        evaluate_synthetic_set(synthetic, split, split, split, {"width": 8, "depth": 2}, {}, {"device": "cpu"}, 0)
