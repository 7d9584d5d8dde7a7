"""MTT's per-dataset, per-IPC settings (methods.md §2.3, DC-BENCH's text copy of the author's table).

They are the presets of MTT, and of IADD, which takes MTT's settings as its base (§6.3). The table
also says whether each row used ZCA (`preprocess.zca`, data preparation, not a method key): on for
CIFAR-10 IPC 1/10 and CIFAR-100 IPC 1/50, off for CIFAR-10 IPC 50, CIFAR-100 IPC 10 and Tiny. The
`paper_cifar10` environment keeps ZCA on for every IPC, as DATM does (see docs/fidelity.md).
"""
from __future__ import annotations

from typing import Any


def _row(syn_steps: int, expert_epochs: int, max_start: int, lr_img: float, lr_lr: float, lr_teacher: float,
         batch_syn: int | None = None) -> dict[str, Any]:
    return {"syn_steps": syn_steps, "expert_epochs": expert_epochs, "min_start_epoch": 0, "max_start_epoch": max_start,
            "lr_img": lr_img, "lr_lr": lr_lr, "lr_teacher": lr_teacher, "batch_syn": batch_syn, "iterations": 5000,
            "pix_init": "real"}


MTT_PRESETS: dict[str, dict[str, Any]] = {
    "cifar10_ipc1": _row(50, 2, 2, 100, 1e-7, 0.01),
    "cifar10_ipc10": _row(30, 2, 20, 100, 1e-5, 0.001),
    "cifar10_ipc50": _row(30, 2, 40, 1000, 1e-5, 0.001),
    "cifar100_ipc1": _row(20, 3, 20, 1000, 1e-5, 0.01),
    "cifar100_ipc10": _row(20, 2, 20, 1000, 1e-5, 0.01),
    "cifar100_ipc50": _row(80, 2, 40, 1000, 1e-5, 0.01, batch_syn=125),
    "tiny_ipc1": _row(10, 2, 10, 10000, 1e-4, 0.01),
    "tiny_ipc10": _row(20, 2, 40, 10000, 1e-4, 0.01, batch_syn=200),
    "tiny_ipc50": _row(20, 2, 40, 10000, 1e-4, 0.01, batch_syn=300),
}

