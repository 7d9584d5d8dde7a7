import pytest
import torch
import torch.nn.functional as F

from ddforge.core.membership import (
    balanced_members,
    loss_threshold_attack,
    per_example_losses,
    weighted_tpr_at_fpr,
)
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.core.seeding import make_generator
from ddforge.core.training import predict_logits, train_classifier

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = NetworkSpec(1, 2, (8, 8), width=8, depth=2)


def _noise(seed: int, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images with random labels: a network can only fit them by memorising each one."""
    g = make_generator(seed, "noise")
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 2, (n,), generator=g)


def _memorise(images: torch.Tensor, labels: torch.Tensor, seed: int) -> torch.nn.Module:
    net = build_network(SPEC, seed)
    train_classifier(net, images, labels, epochs=60, lr=0.05, batch_size=32, generator=make_generator(seed, "batches"),
                     weight_decay=0.0, dsa_config=None)
    return net


@pytest.fixture(scope="module")
def audit_data():
    members, nonmembers, other = _noise(0), _noise(1), _noise(2)
    memorisers = [_memorise(*members, seed) for seed in (10, 11)]
    outsiders = [_memorise(*other, seed) for seed in (20, 21)]
    return members, nonmembers, memorisers, outsiders


def _attack(nets, members, nonmembers):
    member_losses = torch.stack([per_example_losses(net, *members) for net in nets])
    nonmember_losses = torch.stack([per_example_losses(net, *nonmembers) for net in nets])
    return loss_threshold_attack(member_losses, nonmember_losses, 1000, make_generator(0, "attack"))


def test_hand_computed_auroc_and_tpr_at_one_percent_fpr():
    # member losses vs non-member losses; the attack flags low loss. Pairs where the member's loss is lower:
    # 0.1 -> 4, 0.2 -> 4, 0.5 -> 2 + 0.5 (tie with 0.5), 0.9 -> 1: 11.5 of 16 pairs.
    members = torch.tensor([[0.1, 0.2, 0.5, 0.9]])
    nonmembers = torch.tensor([[0.3, 0.5, 0.8, 1.0]])
    result = loss_threshold_attack(members, nonmembers, 200, make_generator(0, "hand"))
    assert result["auroc"]["point"] == pytest.approx(11.5 / 16, abs=1e-12)
    # with 4 non-members, FPR <= 1 % allows no false positive: flag losses below 0.3 -> 2 of 4 members
    assert result["tpr_at_fpr"]["point"] == pytest.approx(0.5, abs=1e-12)
    assert (result["n_members"], result["n_nonmembers"], result["n_networks"]) == (4, 4, 1)
    for key in ("auroc", "tpr_at_fpr"):
        lo, hi = result[key]["ci"]
        assert 0.0 <= lo <= result[key]["point"] <= hi <= 1.0


def test_a_member_tied_with_a_nonmember_is_not_counted_at_low_fpr():
    members = torch.tensor([[0.1, 0.3, 0.5, 0.9]])  # 0.3 ties the lowest non-member loss
    nonmembers = torch.tensor([[0.3, 0.5, 0.8, 1.0]])
    assert loss_threshold_attack(members, nonmembers, 10, make_generator(0, "tie"))["tpr_at_fpr"]["point"] == 0.25
    # at FPR <= 25 % one non-member may be flagged, so the tied member counts too
    scores = -torch.cat([members, nonmembers], 1)[0].double()
    positive = torch.arange(8) < 4
    assert weighted_tpr_at_fpr(scores, positive, torch.ones(1, 8, dtype=torch.float64), 0.25).item() == 0.5


def test_memorised_members_are_detected(audit_data):
    members, nonmembers, memorisers, _ = audit_data
    for net in memorisers:
        assert torch.equal(predict_logits(net, members[0]).argmax(1), members[1])  # 100 % training accuracy
    result = _attack(memorisers, members, nonmembers)
    assert result["auroc"]["point"] > 0.9
    assert result["auroc"]["ci"][0] > 0.5 and result["auroc_excludes_chance"]
    assert result["tpr_at_fpr"]["point"] > 0.2
    assert result["n_networks"] == 2 and result["n_members"] == result["n_nonmembers"] == 32


def test_a_network_that_never_saw_the_members_is_at_chance(audit_data):
    members, nonmembers, _, outsiders = audit_data
    result = _attack(outsiders, members, nonmembers)
    lo, hi = result["auroc"]["ci"]
    assert lo < 0.5 < hi and not result["auroc_excludes_chance"]


def test_per_example_losses_are_cross_entropy_per_image_and_keep_training_mode():
    images, labels = _noise(3, 20)
    net = build_network(NetworkSpec(1, 2, (8, 8), width=8, depth=2, norm="batchnorm"), 0)
    net.train()
    losses = per_example_losses(net, images, labels, batch_size=7)
    assert net.training
    with torch.no_grad():
        expected = F.cross_entropy(net.eval()(images), labels, reduction="none")
    torch.testing.assert_close(losses, expected)


def test_balanced_members_draws_equal_counts_per_class_within_class():
    member_labels = torch.tensor([0] * 10 + [1] * 3 + [2] * 6)
    nonmember_labels = torch.tensor([1] * 8 + [0] * 4 + [2] * 9)
    m_idx, n_idx = balanced_members(member_labels, nonmember_labels, None, make_generator(0, "balance"))
    assert torch.equal(member_labels[m_idx], nonmember_labels[n_idx])
    assert torch.bincount(member_labels[m_idx]).tolist() == [4, 3, 6]
    assert len(set(m_idx.tolist())) == len(m_idx) and len(set(n_idx.tolist())) == len(n_idx)  # without replacement
    capped = balanced_members(member_labels, nonmember_labels, 2, make_generator(0, "balance"))
    assert torch.bincount(member_labels[capped[0]]).tolist() == [2, 2, 2]
    again = balanced_members(member_labels, nonmember_labels, None, make_generator(0, "balance"))
    assert torch.equal(again[0], m_idx) and torch.equal(again[1], n_idx)
    other = balanced_members(member_labels, nonmember_labels, None, make_generator(1, "balance"))
    assert not torch.equal(other[0], m_idx)  # drawn at random, not the first few
