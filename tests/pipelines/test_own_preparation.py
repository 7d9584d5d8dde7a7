"""A method's own data preparation (`<method>.preprocess`): DataDAM distils unwhitened images beside
whitened trajectory methods (methods.md §1.3), on the same splits, and the privacy check still finds a
copy of a real image in the experts' feature space. The run through Kedro itself is in
test_end_to_end.py (conf/ci whitens, DataDAM does not)."""
import numpy as np
import pytest
import torch

from ddforge.core.flat import flatten_parameters
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.core.transforms import apply_transform, fit_transform, invert_transform, retransform
from ddforge.errors import ConfigError
from ddforge.io.readers import RawDataset
from ddforge.pipelines.ingest.nodes import make_own_preparation_node, own_preparation, preprocess
from ddforge.pipelines.share.nodes import check_privacy, privacy_reference

SHARED = {"val_fraction": 0.2, "max_val_per_class": 3, "max_train_per_class": 9, "zca": True, "zca_eps": 0.1}
PRIVACY = {"pixel_rmse_threshold": 0.01, "feature_cosine_threshold": 0.001, "pairs_shown": 2}


def _raw() -> dict:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (30, 1, 6, 6), dtype=np.uint8)
    test = rng.integers(0, 256, (8, 1, 6, 6), dtype=np.uint8)
    return RawDataset(
        train_images=torch.from_numpy(train), train_labels=torch.arange(30) % 2,
        test_images=torch.from_numpy(test), test_labels=torch.arange(8) % 2,
        class_names=["a", "b"], fingerprint="0" * 64, source="fixture",
    ).as_dict()


def test_only_a_differing_transform_gives_a_method_its_own_preparation():
    assert own_preparation("datadam", SHARED, {"zca": True}, matches_trajectories=False) is None
    assert own_preparation("datadam", SHARED, None, matches_trajectories=False) is None
    assert own_preparation("datadam", SHARED, {"zca": False}, matches_trajectories=False) == {**SHARED, "zca": False}


def test_a_trajectory_method_cannot_leave_its_experts_preparation():
    with pytest.raises(ConfigError, match=r"mtt\.preprocess sets zca=False.*experts' trajectories.*preprocess\.zca=True"):
        own_preparation("mtt", SHARED, {"zca": False}, matches_trajectories=True)
    assert own_preparation("mtt", SHARED, {"zca": True}, matches_trajectories=True) is None


def test_a_method_may_not_change_the_splits():
    with pytest.raises(ConfigError, match=r"datadam\.preprocess: unknown keys \['max_train_per_class'\]"):
        own_preparation("datadam", SHARED, {"zca": False, "max_train_per_class": 5}, matches_trajectories=False)


def test_own_preparation_holds_the_shared_splits_under_its_own_transform():
    raw = _raw()
    shared = preprocess(raw, SHARED, seed=3)
    own = make_own_preparation_node("datadam", False)(raw, SHARED, {"zca": False}, 3)
    assert shared[3]["kind"] == "zca" and own[3]["kind"] == "normalize"
    for s, o in zip(shared[:3], own[:3]):
        assert torch.equal(s["labels"], o["labels"])
        # the same images: back in pixel space, both preparations give the same [0,1] pixels
        assert torch.allclose(invert_transform(s["images"], shared[3]), invert_transform(o["images"], own[3]),
                              atol=1e-4)
        assert o["prepared_for"] == "datadam" and "prepared_for" not in s
        assert (s["preparation"], o["preparation"]) == ("zca (eps 0.1)", "normalize")


def test_retransform_gives_the_other_preparation_of_the_same_pixels():
    pixels = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (20, 1, 6, 6), dtype=np.uint8))
    zca, normalize = fit_transform(pixels, zca=True), fit_transform(pixels, zca=False)
    assert torch.allclose(retransform(apply_transform(pixels, normalize), normalize, zca),
                          apply_transform(pixels, zca), atol=1e-4)
    assert torch.allclose(retransform(apply_transform(pixels, zca), zca, normalize),
                          apply_transform(pixels, normalize), atol=1e-4)
    same = apply_transform(pixels, zca)
    assert retransform(same, zca, dict(zca)) is same


def test_the_privacy_check_embeds_a_set_of_another_preparation_in_the_experts_space():
    """A real training image, prepared as DataDAM prepares it, is a copy in feature space too: the
    embedding network (trained on the whitened data) sees it whitened, not as normalised pixels."""
    raw = _raw()
    train, val, _, zca = preprocess(raw, SHARED, seed=3)
    own_train, _, _, normalize = make_own_preparation_node("datadam", False)(raw, SHARED, {"zca": False}, 3)
    spec = NetworkSpec(1, 2, (6, 6), width=4, depth=1, norm="instancenorm")
    theta = flatten_parameters(build_network(spec, 0))
    buffer = {"expert_000": lambda: {"meta": {"network": spec.as_dict()}, "trajectory": [theta]}}
    reference = privacy_reference(train, val, zca, buffer)
    copies = {"method": "datadam", "images": own_train["images"][:4].clone(), "labels": own_train["labels"][:4]}
    report, _ = check_privacy(copies, {}, reference, normalize, PRIVACY)
    for entry in report["images"]:
        assert entry["nearest_feature_index"] == entry["index"]
        assert entry["feature_cosine_distance"] < 1e-4 and entry["near_copy"]
