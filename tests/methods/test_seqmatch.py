"""SeqMatch's defining mechanisms (methods.md §4), each checked where breaking it would show."""
import pytest
import torch

from ddforge.core.flat import flatten_parameters
from ddforge.core.matching import MatchingConfig
from ddforge.core.networks import build_network
from ddforge.core.seeding import derive_seed
from ddforge.errors import ConfigError
from ddforge.methods import seqmatch
from ddforge.methods.registry import METHODS, distill, resolve_config
from tests.methods.conftest import with_ipc

pytestmark = pytest.mark.usefixtures("one_thread")

# tiny_context's shared experts hold 4 epochs; conditioned ones get 4 real-data epochs here
PARAMS = {"iterations": 2, "snapshot_every": 2, "checkpoint_every": 1, "log_every": 1, "syn_steps": 2,
          "expert_epochs": 1, "max_start_epoch": 3, "lr_img": 10.0, "lr_lr": 1e-5, "num_subsets": 2,
          "conditioned_num_experts": 1, "conditioned_expert_epochs": 4, "curriculum_epochs": 2}


@pytest.fixture
def stages_seen(monkeypatch):
    """Every stage's matcher as it enters the loop (with its initial lr), and the loop's result."""
    seen = []
    real = seqmatch.run_loop

    def recording(matcher, *args, **kwargs):
        entry = {"matcher": matcher, "initial_lr": matcher.current_lr()}
        seen.append(entry)
        entry["result"] = real(matcher, *args, **kwargs)
        return entry["result"]

    monkeypatch.setattr(seqmatch, "run_loop", recording)
    return seen


def run(ctx, checkpoint_path=None, run_key="k", **params):
    return distill("seqmatch", resolve_config("seqmatch", {**PARAMS, **params}), ctx, run_key=run_key,
                   checkpoint_path=checkpoint_path)


def test_start_epochs_leave_room_for_m_epochs_inside_each_window(tiny_context, stages_seen):
    windows = [[2, 4], [1, 3]]  # M = 1: t in [2, 3) and [1, 2), so t + M never passes e_k
    result = run(tiny_context, subset_windows=windows, iterations=3)
    assert [s["matcher"].start_epoch_range(0) for s in stages_seen] == [(2, 3), (1, 2)]
    drawn = result["history"]["start_epoch"]
    assert drawn == [2, 2, 2, 1, 1, 1]
    assert METHODS["seqmatch"].buffer_epochs_needed(resolve_config("seqmatch", {**PARAMS, "subset_windows": windows})) == 4


def test_windows_and_conditioned_experts_are_validated_per_subset(tiny_context):
    with pytest.raises(ConfigError, match="subset 2 window"):  # s < e - M fails for [0, 1] with M = 1
        run(tiny_context, subset_windows=[[0, 3], [0, 1]])
    with pytest.raises(ConfigError, match="subset 2 interval ends at epoch 5"):  # conditioned experts hold 4
        run(tiny_context, subset_windows=[[0, 3], [0, 5]])
    with pytest.raises(ConfigError, match="subset_lr_teacher has 1 entries"):
        run(tiny_context, subset_lr_teacher=[0.01])


def test_each_subset_starts_from_its_own_initial_lr(tiny_context, stages_seen):
    result = run(tiny_context, subset_lr_teacher=[0.02, 0.005], iterations=1)
    assert [s["initial_lr"] for s in stages_seen] == pytest.approx([0.02, 0.005])
    assert result["snapshots"][0]["lr"] == pytest.approx(0.005)  # stage 2 begins at α_2, not at α_1's result
    # MTT's SGD on α steps every α_k with lr_lr; SGD on log α (lr_update: log) scales it for its own α_k
    assert [s["matcher"].learnables()[1].lr for s in stages_seen] == pytest.approx([1e-5, 1e-5])
    stages_seen.clear()
    run(tiny_context, subset_lr_teacher=[0.02, 0.005], iterations=1, lr_update="log")
    assert [s["matcher"].learnables()[1].lr for s in stages_seen] == pytest.approx([1e-5 / 0.02**2, 1e-5 / 0.005**2])


def test_earlier_subsets_are_frozen_not_reoptimised(tiny_context, stages_seen):
    result = run(tiny_context)
    first = stages_seen[0]["result"]["snapshots"][-1]
    size = first["images"].shape[0]
    assert torch.equal(result["images"][:size], first["images"])  # a re-optimised copy would differ
    assert torch.equal(result["labels"][:size], first["labels"])
    second = stages_seen[1]["matcher"]
    assert not second.frozen_images.requires_grad
    assert all(l.tensor is not second.frozen_images for l in second.learnables())
    assert second.images.shape[0] == result["images"].shape[0] - size  # only S_2 is learnable
    assert not torch.equal(result["snapshots"][0]["images"][size:], result["images"][size:])  # S_2 did move


def test_frozen_subsets_are_inside_the_matching_loss(tiny_context):
    def loss_with(frozen):
        frozen = frozen.detach().clone()
        m = seqmatch.SubsetMatcher(
            MatchingConfig(syn_steps=2, expert_epochs=1, max_start_epoch=3), build_network(tiny_context.spec, 0),
            tiny_context.trajectories, tiny_context.images[[0, 12]], torch.tensor([0, 1]),
            torch.Generator().manual_seed(3), frozen_images=frozen, frozen_labels=torch.tensor([0, 1]),
            window=(0, 3), dsa_config=None,
        )
        m.frozen_images = frozen.requires_grad_(True)  # only to see whether the loss depends on them
        loss = m.matching_loss(0)[0]
        return loss, torch.autograd.grad(loss, m.frozen_images)[0]

    frozen = tiny_context.images[[1, 13]].clone()
    loss, grad = loss_with(frozen)
    assert grad.abs().sum() > 0
    other_loss, _ = loss_with(frozen + 1.0)
    assert not torch.isclose(loss, other_loss)


def test_later_subsets_match_experts_conditioned_on_the_earlier_ones(tiny_context, stages_seen, monkeypatch):
    curricula = []
    real = seqmatch.train_curriculum
    monkeypatch.setattr(seqmatch, "train_curriculum",
                        lambda net, stages, *a: curricula.append(list(stages)) or real(net, stages, *a))
    run(tiny_context, conditioned_num_experts=2)
    first = stages_seen[0]["result"]["snapshots"][-1]
    second = stages_seen[1]["matcher"]
    assert stages_seen[0]["matcher"].trajectories is tiny_context.trajectories
    assert second.trajectories is not tiny_context.trajectories and len(second.trajectories) == 2
    for e, trajectory in enumerate(second.trajectories):
        assert trajectory.shape[0] == PARAMS["conditioned_expert_epochs"] + 1
        assert all(not torch.equal(trajectory[0], shared[0]) for shared in tiny_context.trajectories)
        fresh = build_network(tiny_context.spec, derive_seed(tiny_context.seed, "seqmatch-expert", 1, e))
        assert not torch.allclose(trajectory[0], flatten_parameters(fresh))  # trained on S_1 before real data
    assert len(curricula) == 2
    for stages in curricula:  # the curriculum is S_1 at its learned lr
        (images, labels, lr), = stages
        assert torch.equal(images, first["images"]) and torch.equal(labels, first["labels"])
        assert lr == pytest.approx(first["lr"])


def test_rerun_with_more_iterations_retrains_conditioned_experts_for_the_changed_first_subset(
        tiny_context, tmp_path, monkeypatch):
    trained = []
    real = seqmatch.conditioned_trajectories
    monkeypatch.setattr(seqmatch, "conditioned_trajectories", lambda *a: trained.append(a[-1]) or real(*a))
    run(tiny_context, tmp_path / "a" / "s.pt", iterations=2)
    assert trained == [1]
    longer = run(tiny_context, tmp_path / "a" / "s.pt", iterations=4)  # same run_key: stage 1 resumes 2 -> 4
    assert trained == [1, 1]  # S_1 changed, so its cached experts are stale
    fresh = run(tiny_context, tmp_path / "b" / "s.pt", iterations=4)
    assert torch.equal(longer["images"], fresh["images"])  # stage 2 restarted instead of resuming stale state
    assert longer["lr"] == fresh["lr"] and longer["history"]["loss"] == fresh["history"]["loss"]
    again = run(tiny_context, tmp_path / "a" / "s.pt", iterations=4)
    assert len(trained) == 3  # the fresh run in b; unchanged S_1 reuses the cache in a
    assert torch.equal(again["images"], fresh["images"])


def test_content_hash_follows_images_labels_and_lrs():
    x, y = torch.zeros(2, 1, 2, 2), torch.tensor([0, 1])
    key = seqmatch.content_hash([(x, y, 0.01)])
    assert key == seqmatch.content_hash([(x.clone(), y.clone(), 0.01)])
    assert key != seqmatch.content_hash([(x + 1e-6, y, 0.01)])
    assert key != seqmatch.content_hash([(x, y.flip(0), 0.01)])
    assert key != seqmatch.content_hash([(x, y, 0.02)])


def test_evaluation_trains_on_every_cumulative_union():
    method = METHODS["seqmatch"]
    images, labels = torch.randn(6, 1, 2, 2), torch.tensor([0, 1, 0, 1, 0, 1])
    final = {"images": images, "labels": labels, "lr": 0.4}
    synthetic = {"stages": [{"size": 2, "lr": 0.1}, {"size": 2, "lr": 0.2}, {"size": 2, "lr": 0.3}],
                 "snapshots": [final]}
    stages = method.training_stages(synthetic, final)
    assert [s[0].shape[0] for s in stages] == [2, 4, 6]
    assert [s[2] for s in stages] == [0.1, 0.2, 0.4]  # the last union at the snapshot's lr
    assert all(torch.equal(s[0], images[: s[0].shape[0]]) for s in stages)
    received = []
    scores = method.extra_evaluations(synthetic, lambda st: received.append(st) or {"acc": len(st)}, {"acc": 9})
    assert [[(s[0].shape[0], s[2]) for s in st] for st in received] == [[(2, 0.1)], [(2, 0.1), (4, 0.2)]]
    assert scores["cumulative"] == [{"subsets": 1, "images": 2, "acc": 1}, {"subsets": 2, "images": 4, "acc": 2},
                                    {"subsets": 3, "images": 6, "acc": 9}]


def test_presets_are_the_spec_examples():
    cfg = resolve_config("seqmatch", {"preset": "cifar10_ipc50"})
    assert seqmatch.split_ipc(50, cfg.extra.num_subsets) == [17, 17, 16]
    assert [seqmatch.start_range(cfg, k) for k in range(3)] == [(0, 18), (0, 18), (0, 8)]
    assert [seqmatch.initial_lr(cfg, k) for k in range(3)] == [0.001, 0.01, 0.01]
    seqmatch.validate(cfg, 3)
    ipc1 = resolve_config("seqmatch", {"preset": "cifar10_ipc1"})
    assert (ipc1.matching.max_start_epoch, ipc1.matching.lr_teacher, ipc1.matching.syn_steps) == (20, 0.01, 30)


def test_ipc_one_is_mtt_on_the_shared_buffer(tiny_context, stages_seen):
    result = run(with_ipc(tiny_context, 1), subset_windows=[[0, 4], [0, 4]], iterations=1)
    assert result["stages"] == [{"ipc": 1, "size": 2, "lr": result["lr"]}]
    assert len(stages_seen) == 1 and stages_seen[0]["matcher"].trajectories is tiny_context.trajectories
