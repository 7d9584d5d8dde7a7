"""The final-network audit: paired across sets, and membership losses consistent with a direct pass."""
import pytest
import torch

from ddforge.core.audit import AuditConfig, audit_data, network_inspector, summarise_audit
from ddforge.core.caveats import paired_difference
from ddforge.core.membership import per_example_losses
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.core.training import predict_logits

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = NetworkSpec(1, 3, (8, 8), width=4, depth=1)


def data(n_train: int = 30, n_test: int = 45):
    g = torch.Generator().manual_seed(0)
    train = (torch.randn(n_train, 1, 8, 8, generator=g), torch.arange(3).repeat(n_train // 3))
    test = (torch.randn(n_test, 1, 8, 8, generator=g), torch.arange(3).repeat(n_test // 3))
    return train, test


def test_inspector_losses_equal_a_direct_forward_pass():
    train, test = data()
    audit = audit_data(train, test[1], AuditConfig(replicates=20, members_per_class=5), seed=0)
    net = build_network(SPEC, 1)
    seen = network_inspector(audit)(net, {"test": predict_logits(net, test[0])})
    rows = audit.nonmember_idx
    torch.testing.assert_close(seen["nonmember_losses"], per_example_losses(net, test[0][rows], test[1][rows]))
    assert seen["member_losses"].shape == (15,) and rows.shape == (15,)  # 5 per class on each side
    assert torch.equal(torch.bincount(test[1][rows]), torch.tensor([5, 5, 5]))


def test_two_sets_resample_the_same_test_images_so_differences_are_paired():
    train, test = data()
    audit = audit_data(train, test[1], AuditConfig(replicates=200, members_per_class=5), seed=0)
    nets = [build_network(SPEC, s) for s in range(2)]
    inspections = [network_inspector(audit)(n, {"test": predict_logits(n, test[0])}) for n in nets]
    a, b = summarise_audit(inspections, audit), summarise_audit(inspections, audit)
    same = paired_difference(a["uncertainty"]["samples"]["accuracy"], b["uncertainty"]["samples"]["accuracy"])
    assert same["ci"] == [0.0, 0.0]  # identical networks on identical resamples: no spurious gap
    lo, hi = a["uncertainty"]["ci"]["accuracy"]
    assert hi - lo > 0.1  # 45 test images: a wide interval
    assert len(a["uncertainty"]["ci"]["sensitivity"]) == 3 and a["test_counts"] == [15, 15, 15]
    assert a["membership"]["n_members"] == 15 and a["membership"]["n_networks"] == 2
    assert {p["top_class"] for p in a["predictions"]} <= {0, 1, 2}
