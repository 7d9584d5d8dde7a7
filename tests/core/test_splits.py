import torch

from ddforge.core.splits import group_holdout, holdout, stratified_holdout


def test_no_patient_appears_in_two_splits():
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0] * 30 + [1] * 20)
    groups = [f"p{i // 3}" for i in range(50)]  # 3 images per patient, ~17 patients
    keep, held = group_holdout(labels, groups, 0.3, g)
    assert sorted(keep.tolist() + held.tolist()) == list(range(50))
    assert {groups[i] for i in keep.tolist()}.isdisjoint({groups[i] for i in held.tolist()})
    assert 0.15 <= held.numel() / 50 <= 0.45
    assert set(labels[held].tolist()) == {0, 1}  # roughly stratified by majority class


def test_stratified_split_without_ids_is_seeded_and_keeps_every_class():
    labels = torch.tensor([0] * 10 + [1] * 4 + [2] * 2)
    a = stratified_holdout(labels, 0.25, torch.Generator().manual_seed(1))
    b = stratified_holdout(labels, 0.25, torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    keep, held = a
    for c in range(3):
        assert (labels[held] == c).any() and (labels[keep] == c).any()


def test_holdout_dispatches_on_ids():
    labels = torch.tensor([0, 0, 1, 1, 0, 1])
    keep, held = holdout(labels, ["a", "a", "b", "b", "c", "c"], 0.5, torch.Generator().manual_seed(0))
    groups = ["a", "a", "b", "b", "c", "c"]
    assert {groups[i] for i in keep.tolist()}.isdisjoint({groups[i] for i in held.tolist()})
