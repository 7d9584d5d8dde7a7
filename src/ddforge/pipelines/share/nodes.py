"""What a user may share: the privacy check (near copies of real images) and the export folder."""
from __future__ import annotations

from typing import Any

import torch
from matplotlib.figure import Figure

from ddforge.core.experts import calibration_sample, snapshot_network
from ddforge.core.networks import ConvNet, NetworkSpec
from ddforge.core.seeding import make_generator
from ddforge.core.privacy import privacy_check, real_to_real_rmse_median
from ddforge.core.transforms import invert_transform, retransform
from ddforge.core.visualise import pair_grid
from ddforge.io.export import class_folders, image_partitions, to_uint8
from ddforge.provenance_manifest import run_manifest


def _embedding_network(reference: dict) -> ConvNet:
    return snapshot_network(NetworkSpec.from_dict(reference["embedding_network"]), reference["embedding_theta"], "cpu",
                            reference["embedding_calibration"])


@torch.no_grad()
def _embed(net: ConvNet, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([net.embed(images[i : i + 1024]) for i in range(0, len(images), 1024)])


def privacy_reference(real_train: dict, real_val: dict, data_transform: dict, expert_buffer: dict) -> dict:
    """What every method's privacy check compares against, computed once: the real training images
    in display space and in the feature space of the first expert's final snapshot (a trained
    network's view of similarity), and the typical real-to-real distance. It keeps the shared transform:
    a method with its own preparation is embedded after re-expressing its images in it."""
    first = expert_buffer[sorted(expert_buffer)[0]]()
    network, theta = first["meta"]["network"], first["trajectory"][-1]
    real_pixels = invert_transform(real_train["images"], data_transform).clamp(0, 1)
    val_pixels = invert_transform(real_val["images"], data_transform).clamp(0, 1)
    embedding = {"embedding_network": network, "embedding_theta": theta,
                 "embedding_calibration": calibration_sample(real_train["images"], make_generator(0, "bn-calibration"))}
    return {
        "pixels": real_pixels, "features": _embed(_embedding_network(embedding), real_train["images"]),
        "groups": real_train.get("groups"), "transform": data_transform, **embedding,
        "real_to_real_rmse_median": real_to_real_rmse_median(val_pixels, real_pixels) if len(val_pixels) else None,
    }


def check_privacy(synthetic_set: dict, evaluation: dict, privacy_reference: dict, data_transform: dict,
                  privacy: dict[str, Any]) -> tuple[dict, Figure]:
    """Nearest real training image of every synthetic image; near copies flagged; closest pairs drawn;
    beside it, the membership-inference audit of the networks trained on the set (from its evaluation)."""
    ref = privacy_reference
    syn_display = invert_transform(synthetic_set["images"], data_transform).clamp(0, 1)
    net = _embedding_network(ref)
    syn_for_net = retransform(synthetic_set["images"].float(), data_transform, ref["transform"])
    report = privacy_check(
        syn_display, ref["pixels"], _embed(net, syn_for_net), ref["features"],
        pixel_rmse_threshold=privacy["pixel_rmse_threshold"],
        feature_cosine_threshold=privacy["feature_cosine_threshold"],
    )
    if ref["real_to_real_rmse_median"] is not None:
        report["reference_real_to_real_pixel_rmse_median"] = ref["real_to_real_rmse_median"]
    report["method"] = synthetic_set["method"]
    report["membership_inference"] = evaluation.get("membership")
    if ref["groups"] is not None:
        for entry in report["images"]:
            entry["nearest_pixel_patient"] = ref["groups"][entry["nearest_pixel_index"]]
    closest = sorted(report["images"], key=lambda e: e["pixel_rmse"])[: privacy["pairs_shown"]]
    figure = pair_grid(
        syn_display[[e["index"] for e in closest]], ref["pixels"][[e["nearest_pixel_index"] for e in closest]],
        [f"rmse {e['pixel_rmse']:.3f}" + (" COPY" if e["near_copy"] else "") for e in closest],
        title=f"{synthetic_set['method']}: closest synthetic/real pairs ({report['num_flagged']} flagged)",
    )
    return report, figure


def export_synthetic_set(synthetic_set: dict, data_transform: dict, parameters: dict[str, Any]) -> tuple[dict, dict, dict]:
    """What a hospital shares: PNGs per class, the exact tensors with their transform, a manifest."""
    pixels = to_uint8(invert_transform(synthetic_set["images"], data_transform))
    folders = class_folders(synthetic_set["class_names"])
    images = image_partitions(pixels, synthetic_set["labels"], folders)
    tensors = {
        "images": synthetic_set["images"], "labels": synthetic_set["labels"], "lr": synthetic_set["lr"],
        "display_uint8": pixels, "class_names": synthetic_set["class_names"],
        "transform": data_transform, "network": synthetic_set["network"],
    }
    manifest = {
        "method": synthetic_set["method"], "ipc": synthetic_set["ipc"],
        "num_images": int(synthetic_set["images"].shape[0]),
        "class_names": synthetic_set["class_names"],
        "class_folders": folders,
        "label_kind": "soft (argmax in folders, exact in synthetic_set.pt)" if synthetic_set["labels"].is_floating_point()
        else "hard",
        "learned_lr": synthetic_set["lr"], "network": synthetic_set["network"],
        "distillation": synthetic_set.get("meta", {}),
        **run_manifest(parameters, env=None),
    }
    return images, tensors, manifest
