"""A batch-norm network rebuilt from a stored snapshot normalises with statistics of real data, not
with a fresh layer's never-updated running statistics (mean 0, variance 1)."""
import pytest
import torch

from ddforge.core.experts import ExpertConfig, snapshot_logits, train_expert
from ddforge.core.flat import load_flat
from ddforge.core.networks import NetworkSpec, build_network

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bn_expert():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat_interleave(40)
    images = torch.randn(80, 1, 8, 8, generator=g) * 0.5 + 2.0   # far from mean 0 / variance 1
    images[labels == 1, :, :4] += 2.0
    spec = NetworkSpec(1, 2, (8, 8), width=8, depth=2, norm="batchnorm")
    theta = train_expert(spec, images, labels, ExpertConfig(epochs=6, lr=0.05, batch_size=16, dsa=False), seed=0,
                         generator=torch.Generator().manual_seed(0))["trajectory"][-1]
    return spec, theta, images, labels


@torch.no_grad()
def _batch_statistics_logits(spec, theta, images):
    """Reference: the network in train mode normalises each layer with the batch's own statistics."""
    net = build_network(spec, 5)
    load_flat(net, theta)
    return net.train()(images)


def test_snapshot_logits_use_statistics_recomputed_on_the_calibration_images(bn_expert):
    spec, theta, images, labels = bn_expert
    logits = snapshot_logits(spec, theta, images, "cpu", calibration=images)
    assert torch.allclose(logits, _batch_statistics_logits(spec, theta, images), atol=1e-3, rtol=1e-3)
    assert (logits.argmax(1) == labels).float().mean() > 0.9


def test_a_batchnorm_snapshot_without_calibration_images_is_refused(bn_expert):
    spec, theta, images, _ = bn_expert
    with pytest.raises(ValueError, match="calibration"):
        snapshot_logits(spec, theta, images, "cpu")
