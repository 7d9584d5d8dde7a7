"""Expert trajectories: networks trained on real data, snapshotted as flat vectors every epoch."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ddforge.core.augment import DSAConfig
from ddforge.core.flat import flatten_parameters, load_flat
from ddforge.core.networks import NetworkSpec, build_network
from ddforge.core.training import predict_logits, recalibrate_batchnorm, train_classifier

BN_CALIBRATION_IMAGES = 2048  # real images whose statistics a rebuilt batch-norm network normalises with


@dataclass(frozen=True)
class ExpertConfig:
    epochs: int = 6
    lr: float = 0.01
    batch_size: int = 256
    momentum: float = 0.0
    weight_decay: float = 0.0
    dsa: bool = True
    compile: bool = False        # torch.compile the training forward (see benchmarks/bench.py)
    channels_last: bool = False
    vmap_group: int = 1          # >1: train this many experts at once with torch.func.vmap (GPUs)
    bf16: bool = False           # bfloat16 autocast of the forward (tested within tolerance of float32)


def train_expert(
    spec: NetworkSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: ExpertConfig,
    *,
    seed: int,
    generator: torch.Generator,
    eval_images: torch.Tensor | None = None,
    eval_labels: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    net: nn.Module | None = None,
) -> dict:
    """One trajectory [epochs+1, P] (init plus every epoch) and the per-epoch held-out accuracy.

    Every snapshot is a copy: a view of the live weights would make all epochs equal the last
    (the defect of the released MTT buffer code on CPU). `net` continues from a given network
    (SeqMatch's experts start from a network already trained on earlier synthetic subsets).
    """
    net = build_network(spec, seed, device) if net is None else net
    snapshots = [flatten_parameters(net).cpu()]
    accuracy: list[float] = []

    def on_epoch_end(epoch: int, model: nn.Module) -> None:
        snapshots.append(flatten_parameters(model).cpu())
        if eval_images is not None:
            pred = predict_logits(model, eval_images).argmax(1)
            accuracy.append((pred == eval_labels).float().mean().item())

    train_classifier(
        net, images, labels,
        epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, generator=generator,
        momentum=cfg.momentum, weight_decay=cfg.weight_decay,
        dsa_config=DSAConfig() if cfg.dsa else None, decay_at_half=False, on_epoch_end=on_epoch_end,
        compile_model=cfg.compile, channels_last=cfg.channels_last, bf16=cfg.bf16,
    )
    return {"trajectory": torch.stack(snapshots), "eval_accuracy": accuracy}


def calibration_sample(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A fixed random sample of real training images for batch-norm statistics."""
    if len(images) <= BN_CALIBRATION_IMAGES:
        return images
    return images[torch.randperm(len(images), generator=generator)[:BN_CALIBRATION_IMAGES].to(images.device)]


def snapshot_network(spec: NetworkSpec, theta: torch.Tensor, device: str | torch.device,
                     calibration: torch.Tensor | None) -> nn.Module:
    """The network whose flat parameters are the snapshot `theta`, in eval mode. A batch-norm network
    normalises with statistics recomputed on `calibration` (real training images): a snapshot holds
    parameters only, and never-updated running statistics would make its outputs meaningless."""
    net = build_network(spec, 0, device)
    load_flat(net, theta.to(device))
    if spec.norm == "batchnorm":
        if calibration is None:
            raise ValueError("a batch-norm snapshot needs calibration images for its running statistics")
        recalibrate_batchnorm(net, calibration)
    return net.eval()


def snapshot_logits(spec: NetworkSpec, theta: torch.Tensor, images: torch.Tensor, device: str | torch.device,
                    calibration: torch.Tensor | None = None) -> torch.Tensor:
    """Logits (on the CPU) of the network whose flat parameters are the snapshot `theta`."""
    return predict_logits(snapshot_network(spec, theta, device, calibration), images)
