"""Every random draw comes from an explicit generator derived from the run seed.

Named streams (`derive_seed(seed, "experts", 3)`) keep draws independent of execution order,
so adding a stage or resuming a run does not shift anyone else's randomness.
"""
from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *names: object) -> int:
    digest = hashlib.sha256(repr((int(seed),) + tuple(str(n) for n in names)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 62) - 1)


def make_generator(seed: int, *names: object) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, *names))
    return g
