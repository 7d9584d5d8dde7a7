"""What a user may share: the privacy check (near copies of real images) and the export folder."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from matplotlib.figure import Figure

from ddforge.core.flat import load_flat
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.core.privacy import privacy_check
from ddforge.core.transforms import invert_transform
from ddforge.core.visualise import pair_grid
from ddforge.io.export import class_folders, image_partitions, to_uint8
from ddforge.provenance_manifest import run_manifest


def _expert_embedding(expert_buffer: dict) -> Callable[[torch.Tensor], torch.Tensor]:
    """Embeddings from the first expert's final snapshot (a trained network's view of similarity);
    the partition is loaded once for both the synthetic and the real images."""
    first = expert_buffer[sorted(expert_buffer)[0]]()
    net = build_network(NetworkSpec.from_dict(first["meta"]["network"]), 0).eval()
    load_flat(net, first["trajectory"][-1])

    @torch.no_grad()
    def embed(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([net.embed(images[i : i + 1024]) for i in range(0, len(images), 1024)])

    return embed


def check_privacy(synthetic_set: dict, real_train: dict, real_val: dict, data_transform: dict, expert_buffer: dict,
                  privacy: dict[str, Any]) -> tuple[dict, Figure]:
    """Nearest real training image of every synthetic image; near copies flagged; closest pairs drawn."""
    syn_display = invert_transform(synthetic_set["images"], data_transform).clamp(0, 1)
    real_display = invert_transform(real_train["images"], data_transform).clamp(0, 1)
    report = privacy_check(
        syn_display, real_display,
        (embed := _expert_embedding(expert_buffer))(synthetic_set["images"].float()),
        embed(real_train["images"]),
        pixel_rmse_threshold=privacy["pixel_rmse_threshold"],
        feature_cosine_threshold=privacy["feature_cosine_threshold"],
        reference_pixels=invert_transform(real_val["images"], data_transform).clamp(0, 1),
    )
    report["method"] = synthetic_set["method"]
    if real_train.get("groups") is not None:
        for entry in report["images"]:
            entry["nearest_pixel_patient"] = real_train["groups"][entry["nearest_pixel_index"]]
    closest = sorted(report["images"], key=lambda e: e["pixel_rmse"])[: privacy["pairs_shown"]]
    figure = pair_grid(
        syn_display[[e["index"] for e in closest]], real_display[[e["nearest_pixel_index"] for e in closest]],
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
