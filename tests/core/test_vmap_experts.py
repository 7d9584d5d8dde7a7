import pytest
import torch

from ddforge.core.experts import ExpertConfig, train_expert
from ddforge.core.networks import NetworkSpec
from ddforge.core.vmap_experts import train_experts_vmapped
from ddforge.errors import ConfigError

SPEC = NetworkSpec(1, 3, (8, 8), width=4, depth=2)


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(40, 1, 8, 8, generator=g), torch.arange(40) % 3


def test_vmapped_experts_reproduce_one_at_a_time_training():
    images, labels = _data()
    cfg = ExpertConfig(epochs=2, lr=0.05, batch_size=16)
    one_by_one = [
        train_expert(SPEC, images, labels, cfg, seed=s, generator=torch.Generator().manual_seed(10 + s))["trajectory"]
        for s in (0, 1, 2)
    ]
    together = train_experts_vmapped(SPEC, images, labels, cfg, seeds=[0, 1, 2],
                                     generators=[torch.Generator().manual_seed(10 + s) for s in (0, 1, 2)])
    for a, b in zip(one_by_one, together):
        assert a.shape == b.shape == (3, a.shape[1])
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
        assert not torch.equal(b[1], b[2])  # it trained


def test_vmapped_experts_refuse_what_they_cannot_reproduce():
    images, labels = _data()
    with pytest.raises(ConfigError, match="plain SGD"):
        train_experts_vmapped(SPEC, images, labels, ExpertConfig(momentum=0.9), seeds=[0], generators=[torch.Generator()])


def test_the_experts_node_gives_the_same_buffer_in_groups(tmp_path):
    from ddforge.pipelines.experts.nodes import train_experts

    images, labels = _data()
    split = {"images": images, "labels": labels, "class_names": ["a", "b", "c"], "data_fingerprint": "f"}
    params = {"num_experts": 3, "epochs": 2, "lr": 0.05, "batch_size": 16}
    network = {"width": 4, "depth": 2}
    one = train_experts(split, split, network, params, {"device": "cpu", "checkpoint_dir": str(tmp_path / "a")}, 0)
    grouped = train_experts(split, split, network, {**params, "vmap_group": 2},
                            {"device": "cpu", "checkpoint_dir": str(tmp_path / "b")}, 0)
    assert list(one) == list(grouped) == ["expert_000", "expert_001", "expert_002"]
    for name in one:
        torch.testing.assert_close(grouped[name]["trajectory"], one[name]["trajectory"], rtol=1e-4, atol=1e-5)
        assert abs(grouped[name]["meta"]["val_accuracy"][-1] - one[name]["meta"]["val_accuracy"][-1]) <= 0.05
