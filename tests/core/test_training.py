import torch

from ddforge.core.networks import NetworkSpec, build_network
from ddforge.core.training import predict_logits, train_classifier


def _data():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(30)
    images = torch.randn(90, 1, 8, 8, generator=g) * 0.5
    for c in range(3):
        images[labels == c, :, 2 * c : 2 * c + 2] += 1.5
    return images, labels


def _train(**options):
    images, labels = _data()
    net = build_network(NetworkSpec(1, 3, (8, 8), width=8, depth=2), 0)
    train_classifier(net, images, labels, epochs=30, lr=0.05, batch_size=16,
                     generator=torch.Generator().manual_seed(1), **options)
    return net, (predict_logits(net, images).argmax(1) == labels).float().mean().item()


def test_bf16_autocast_runs_in_bfloat16_and_matches_float32_within_tolerance():
    seen = []
    net, acc32 = _train()
    _, acc16 = _train(bf16=True)
    net16 = build_network(NetworkSpec(1, 3, (8, 8), width=8, depth=2), 0)
    net16.features[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    images, labels = _data()
    train_classifier(net16, images[:16], labels[:16], epochs=1, lr=0.05, batch_size=16,
                     generator=torch.Generator(), bf16=True)
    assert seen and seen[0] == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in net16.parameters())
    assert acc32 > 0.9 and abs(acc32 - acc16) <= 0.05


def test_channels_last_gives_the_same_training_as_the_default_layout():
    net_a, acc_a = _train()
    net_b, acc_b = _train(channels_last=True)
    for a, b in zip(net_a.parameters(), net_b.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert acc_a == acc_b
