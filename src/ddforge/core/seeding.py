"""Every random draw comes from an explicit generator derived from the run seed.

Named streams (`derive_seed(seed, "experts", 3)`) keep draws independent of execution order,
so adding a stage or resuming a run does not shift anyone else's randomness.
"""
from __future__ import annotations

import hashlib
from numbers import Integral
from typing import Any

import torch

from ddforge.errors import ConfigError


def derive_seed(seed: int, *names: object) -> int:
    digest = hashlib.sha256(repr((int(seed),) + tuple(str(n) for n in names)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 62) - 1)


def make_generator(seed: int, *names: object) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, *names))
    return g


def check_replicate(replicate: Any) -> None:
    """Refuse a `params:replicate` that is not a non-negative integer (also before any node, by a hook)."""
    if not isinstance(replicate, Integral) or isinstance(replicate, bool) or replicate < 0:
        raise ConfigError(f"replicate must be a non-negative integer (0: the run seed's own distillation); "
                          f"got {type(replicate).__name__} {replicate!r}")


def replicate_seed(seed: int, replicate: Any) -> int:
    """The seed of one independent distillation (`params:replicate`) from the same experts.

    Replicate 0 is the run seed itself, so every artefact made before replicates existed is reproduced
    as it was; replicate r > 0 draws its own initial images, minibatches and random-real subset from a
    stream derived from the run seed. The experts and the evaluation networks keep the run seed: the
    spread between replicates is the distillation's own, judged by the same networks."""
    check_replicate(replicate)
    return int(seed) if replicate == 0 else derive_seed(seed, "replicate", int(replicate))
