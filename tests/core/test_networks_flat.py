import pytest
import torch

from ddforge.core.flat import FlatLayout, flatten_parameters, functional_forward, load_flat
from ddforge.core.networks import ConvNet, NetworkSpec, build_network, count_parameters
from ddforge.errors import ConfigError


@pytest.mark.parametrize(
    ("in_ch", "classes", "size", "expected"),
    [(1, 10, (28, 28), 317_706), (3, 10, (32, 32), 320_010), (3, 100, (32, 32), 504_420)],
)
def test_convnetd3_parameter_counts_match_the_papers(in_ch, classes, size, expected):
    spec = NetworkSpec(in_channels=in_ch, num_classes=classes, im_size=size, width=128, depth=3)
    assert count_parameters(ConvNet(spec)) == expected


def test_same_seed_same_weights_and_global_rng_untouched():
    spec = NetworkSpec(1, 10, (28, 28), width=8, depth=2)
    state = torch.get_rng_state()
    a, b = build_network(spec, 7), build_network(spec, 7)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(flatten_parameters(a), flatten_parameters(b))
    assert not torch.equal(flatten_parameters(a), flatten_parameters(build_network(spec, 8)))


@pytest.mark.parametrize("norm", ["instancenorm", "batchnorm", "layernorm", "none"])
def test_functional_forward_equals_module_forward(norm):
    spec = NetworkSpec(3, 5, (16, 16), width=6, depth=2, norm=norm)
    net = build_network(spec, 0).eval()
    x = torch.randn(4, 3, 16, 16)
    layout = FlatLayout.of(net)
    flat = flatten_parameters(net)
    assert flat.numel() == layout.size == count_parameters(net)
    torch.testing.assert_close(functional_forward(net, layout, flat, x), net(x), rtol=0, atol=0)
    # a different flat vector gives the output of a module holding those weights
    other = flatten_parameters(build_network(spec, 1))
    out = functional_forward(net, layout, other, x)
    load_flat(net, other)
    torch.testing.assert_close(out, net(x), rtol=0, atol=0)


def test_flatten_returns_a_copy_not_a_view():
    net = build_network(NetworkSpec(1, 2, (8, 8), width=2, depth=1), 0)
    snap = flatten_parameters(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    assert not torch.equal(snap, flatten_parameters(net))


def test_expand_per_tensor_matches_layout():
    net = build_network(NetworkSpec(1, 2, (8, 8), width=2, depth=1), 0)
    layout = FlatLayout.of(net)
    w = torch.arange(len(layout.numels), dtype=torch.float32)
    expanded = layout.expand_per_tensor(w)
    assert expanded.numel() == layout.size
    for i, (o, k) in enumerate(zip(layout.offsets, layout.numels)):
        assert torch.all(expanded[o : o + k] == i)


def test_bad_geometry_is_refused_with_a_clear_message():
    with pytest.raises(ConfigError, match="not divisible"):
        NetworkSpec(1, 10, (30, 30), depth=3)
    with pytest.raises(ConfigError, match="norm"):
        NetworkSpec(1, 10, (32, 32), norm="groupnorm")
