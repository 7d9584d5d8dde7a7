"""A compiled network trains the same whatever the process compiled before it (docs/fidelity.md: two
from-scratch runs of the CPU tier had given experts 0 and 1 other trajectories than a run that trained
them first)."""
import torch
from torch._dynamo.utils import counters

from ddforge.core.flat import flatten_parameters
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.core.training import fast_forward, train_classifier
from ddforge.hooks import FreshCompilerHook
from ddforge.settings import HOOKS

SPEC = NetworkSpec(1, 4, (8, 8), width=4, depth=2)
# 376 images: a full batch of 256 and a partial one of 120, the shapes of an expert's epoch
IMAGES = torch.randn(376, 1, 8, 8, generator=torch.Generator().manual_seed(0))
LABELS = torch.randint(0, 4, (376,), generator=torch.Generator().manual_seed(1))


def _compiled_training(after_another_network: bool) -> torch.Tensor:
    torch._dynamo.reset()
    if after_another_network:   # an earlier network of the class, compiled, met both batch sizes
        other = build_network(SPEC, 1, "cpu")
        forward = fast_forward(other, compile_model=True, channels_last=False)
        for n in (256, 120):
            forward(IMAGES[:n]).sum().backward()
    net = build_network(SPEC, 0, "cpu")
    train_classifier(net, IMAGES, LABELS, epochs=1, lr=0.01, batch_size=256, generator=torch.Generator().manual_seed(2),
                     momentum=0.0, weight_decay=0.0, dsa_config=None, decay_at_half=False, compile_model=True)
    return flatten_parameters(net)


def test_a_compiled_network_trains_bit_identically_after_another_compiled_network():
    # with torch's automatic dynamic shapes the second run's full batches took a dynamic-shape kernel,
    # whose reduction over the batch is split otherwise between two threads
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert torch.equal(_compiled_training(False), _compiled_training(True))
    finally:
        torch.set_num_threads(before)


def test_each_node_starts_from_a_clean_compiler_state(one_thread):
    assert any(isinstance(h, FreshCompilerHook) for h in HOOKS)
    torch._dynamo.reset()
    forward = fast_forward(build_network(SPEC, 0, "cpu"), compile_model=True, channels_last=False)
    forward(IMAGES[:8])
    compiled = counters["stats"]["unique_graphs"]
    forward(IMAGES[:8])
    assert counters["stats"]["unique_graphs"] == compiled   # cached: no new graph
    FreshCompilerHook().before_node_run()
    forward(IMAGES[:8])
    assert counters["stats"]["unique_graphs"] == compiled + 1   # the next node compiles afresh
