"""Each trajectory method's defining mechanism, on a tiny problem with real expert trajectories."""
import pytest
import torch

from ddforge.core.matching import MatchingConfig
from ddforge.core.networks import build_network
from ddforge.errors import ConfigError
from ddforge.methods import datm, seqmatch
from ddforge.methods.registry import METHODS, distill, resolve_config
from tests.methods.conftest import with_ipc

MATCH = dict(syn_steps=2, expert_epochs=1, max_start_epoch=3, lr_img=10.0, lr_lr=1e-5)


def test_consecutive_expert_snapshots_differ(tiny_context):
    for t in tiny_context.trajectories:
        assert t.shape[0] == 5
        assert all(not torch.equal(t[i], t[i + 1]) for i in range(4))


# ---------------------------------------------------------------- DATM
def test_datm_window_grows_linearly_to_max_start_epoch():
    cfg = MatchingConfig(min_start_epoch=0, max_start_epoch=20)
    extra = datm.ExtraConfig(current_max_start_epoch=10, expansion_end_epoch=1000)
    bounds = [datm.window_upper_bound(it, cfg, extra) for it in (0, 100, 500, 999, 1000, 5000)]
    assert bounds == [10, 11, 15, 19, 20, 20]
    fixed = datm.ExtraConfig(sequential_generation=False, current_max_start_epoch=10)
    assert datm.window_upper_bound(0, cfg, fixed) == 20


def test_datm_samples_start_epochs_inside_the_growing_window(tiny_context):
    cfg = resolve_config("datm", {**MATCH, "current_max_start_epoch": 1, "expansion_end_epoch": 10, "pix_init": "real"})
    m = METHODS["datm"].build(tiny_context, cfg)
    early = {m.sample_window(0)[1] for _ in range(50)}
    late = {m.sample_window(10)[1] for _ in range(200)}
    assert early == {0}
    assert late == {0, 1, 2}


def test_datm_soft_labels_start_from_correct_experts_and_receive_gradient(tiny_context):
    m = METHODS["datm"].build(tiny_context, resolve_config("datm", {**MATCH, "threshold": 10.0}))
    assert m.labels.is_floating_point() and m.labels.shape == (4, 2)
    # initial soft labels: mean logits of the experts that classify each image correctly
    logits = torch.stack([datm.expert_logits(tiny_context, e, m.images.detach()) for e in range(2)])
    hard = torch.tensor([0, 0, 1, 1])
    correct = logits.argmax(2) == hard
    assert correct.any(0).all(), "init must pick images some expert classifies correctly"
    expected = torch.stack([logits[correct[:, i], i].mean(0) for i in range(4)])
    torch.testing.assert_close(m.labels.detach(), expected)
    before = m.labels.detach().clone()
    result = m.step(0)
    assert result.applied
    assert m.labels.grad is not None and m.labels.grad.abs().sum() > 0
    assert not torch.equal(before, m.labels.detach())


def test_datm_gate_skips_updates_above_threshold(tiny_context):
    m = METHODS["datm"].build(with_ipc(tiny_context, 1), resolve_config("datm", {**MATCH, "threshold": 0.0, "pix_init": "real"}))
    images, labels = m.images.detach().clone(), m.labels.detach().clone()
    result = m.step(0)
    assert result.finite and not result.applied
    assert torch.equal(images, m.images.detach()) and torch.equal(labels, m.labels.detach())


# ---------------------------------------------------------------- IADD
def test_iadd_weights_stay_positive_with_mean_one_and_change(tiny_context):
    for granularity, normalise in (("tensor", "all"), ("element", "all"), ("element", "tensor")):
        cfg = resolve_config("iadd", {**MATCH, "importance_granularity": granularity, "lr_importance": 5.0,
                                      "importance_normalise": normalise})
        m = METHODS["iadd"].build(tiny_context, cfg)
        w0 = m.element_weights().detach().clone()
        torch.testing.assert_close(w0, torch.ones_like(w0))
        for it in range(4):
            m.step(it)
        w = m.element_weights().detach()
        assert (w > 0).all()
        torch.testing.assert_close(w.mean(), torch.tensor(1.0))
        assert not torch.allclose(w, w0), granularity
        assert m.extras()["importance"]["per_tensor"].shape == (len(m.layout.names),)


def test_iadd_per_tensor_normalisation_keeps_every_tensors_share(tiny_context):
    """Weights normalised over all elements can move a tensor's whole share to the others (the
    classifier down to 0.000 in a default run); normalised within each tensor, none can be dropped."""
    cfg = {**MATCH, "importance_granularity": "element", "lr_importance": 5.0}
    shares = {}
    for normalise in ("all", "tensor"):
        m = METHODS["iadd"].build(tiny_context, resolve_config("iadd", {**cfg, "importance_normalise": normalise}))
        with torch.no_grad():   # the first tensor's elements made ten times as heavy as the rest
            m.raw_importance[: m.layout.numels[0]] = 10.0
        shares[normalise] = m.per_tensor_importance()
        w = m.element_weights().detach()
        first = w[: m.layout.numels[0]]
        assert (w > 0).all() and torch.allclose(first, first[0])
    torch.testing.assert_close(shares["tensor"], torch.ones(len(shares["tensor"])))
    assert shares["all"][0] > 2 and (shares["all"][1:] < 1).all()
    with pytest.raises(ConfigError, match="plain MTT"):
        METHODS["iadd"].build(tiny_context, resolve_config("iadd", {**MATCH, "importance_granularity": "tensor"}))


def test_iadd_per_tensor_normalisation_still_learns_within_a_tensor(tiny_context):
    cfg = {**MATCH, "importance_granularity": "element", "importance_normalise": "tensor", "lr_importance": 5.0}
    m = METHODS["iadd"].build(tiny_context, resolve_config("iadd", cfg))
    w0 = m.element_weights().detach().clone()
    for it in range(4):
        m.step(it)
    w = m.element_weights().detach()
    assert not torch.allclose(w, w0)
    torch.testing.assert_close(m.per_tensor_importance(), torch.ones(len(m.layout.names)))


def test_iadd_loss_uses_the_weights(tiny_context):
    m = METHODS["iadd"].build(tiny_context, resolve_config("iadd", MATCH))
    with torch.no_grad():
        m.raw_importance[0] = 5.0  # first conv weight much more important than the rest
    gen_state = m.generator.get_state()
    weighted, _, _ = m.matching_loss(0)
    m.generator.set_state(gen_state)
    with torch.no_grad():
        m.raw_importance.fill_(0.5413248546129181)  # softplus^-1(1): uniform weights == MTT
    uniform, _, _ = m.matching_loss(0)
    assert not torch.isclose(weighted, uniform)


# ---------------------------------------------------------------- SeqMatch
def test_split_ipc():
    assert seqmatch.split_ipc(50, 3) == [17, 17, 16]
    assert seqmatch.split_ipc(1, 3) == [1]
    assert seqmatch.split_ipc(4, 2) == [2, 2]


def test_seqmatch_freezes_earlier_subsets_and_changes_later_ones(tiny_context, tmp_path):
    params = {**MATCH, "iterations": 3, "snapshot_every": 3, "checkpoint_every": 3, "log_every": 1,
              "num_subsets": 2, "conditioned_num_experts": 1, "conditioned_expert_epochs": 4,
              "curriculum_epochs": 2}
    result = distill("seqmatch", resolve_config("seqmatch", params), tiny_context, run_key="k",
                     checkpoint_path=tmp_path / "s.pt")
    assert [s["size"] for s in result["stages"]] == [2, 2]
    first_stage = torch.load(tmp_path / "s.stage0.pt", weights_only=True)["snapshots"][-1]["images"]
    for snap in result["snapshots"]:  # every snapshot of the second stage
        assert torch.equal(snap["images"][:2], first_stage)  # S_1 bit-identical (frozen)
    init, final = result["snapshots"][0]["images"], result["snapshots"][-1]["images"]
    assert not torch.equal(init[2:], final[2:])  # S_2 was distilled
    assert (tmp_path / "s.stage1.experts.pt").exists()  # conditioned experts, reused on resume


def test_seqmatch_student_batches_include_frozen_subsets(tiny_context):
    frozen = torch.randn(2, 1, 8, 8)
    m = seqmatch.SubsetMatcher(
        MatchingConfig(**MATCH), build_network(tiny_context.spec, 0),
        tiny_context.trajectories, torch.randn(2, 1, 8, 8), torch.tensor([0, 1]), torch.Generator(),
        frozen_images=frozen, frozen_labels=torch.tensor([0, 1]), window=(0, 2),
    )
    images, targets = m.student_data()
    assert images.shape[0] == 4 and torch.equal(images[:2], frozen)
    assert m.batch_size() == 2  # MTT default batch = the newest subset's size


def test_methods_accept_per_class_ipc(tiny_context):
    params = {"iterations": 1, "snapshot_every": 1, "checkpoint_every": 1, "log_every": 1,
              "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 3, "lr_img": 10.0}
    ctx = with_ipc(tiny_context, 3, 1)
    for method in ("mtt", "iadd", "datm"):
        result = distill(method, resolve_config(method, params), ctx, run_key="k", checkpoint_path=None)
        hard = result["labels"].argmax(1) if result["labels"].is_floating_point() else result["labels"]
        assert hard.tolist() == [0, 0, 0, 1], method
        assert result["ipc"] == [3, 1]
    with pytest.raises(ConfigError, match="seqmatch"):
        distill("seqmatch", resolve_config("seqmatch", {**params, "num_subsets": 2}), ctx, run_key="k",
                checkpoint_path=None)


def test_iadd_report_figure_shows_the_spread_of_element_weights_within_each_tensor():
    from matplotlib.container import ErrorbarContainer

    from ddforge.methods.iadd import render_importance
    flat = torch.linspace(0, 2, 101)   # 5th percentile 0.1, 95th 1.9, mean 1
    importance = {"granularity": "element", "names": ["conv.weight", "conv.bias"], "numels": [4, 101],
                  "per_tensor": torch.ones(2), "weights": torch.cat([torch.ones(4), flat])}
    fig = render_importance({"method": "iadd", "extras": {"importance": importance}})
    (bars,) = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    segments = bars.lines[2][0].get_segments()
    lows, highs = [float(seg[0][1]) for seg in segments], [float(seg[1][1]) for seg in segments]
    assert lows == pytest.approx([1.0, 0.1]) and highs == pytest.approx([1.0, 1.9])
    per_tensor = {**importance, "granularity": "tensor", "weights": torch.ones(2)}
    fig = render_importance({"method": "iadd", "extras": {"importance": per_tensor}})
    assert not [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
