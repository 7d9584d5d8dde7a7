"""Imported by the Dagster executor's forkserver (see `definitions.executor_config`) before it forks
any step: sets the torch threads every step process then inherits, so concurrent steps share the
cores instead of each spinning one OpenMP thread per core."""
from __future__ import annotations

import torch

from ddforge.definitions import step_threads

THREADS = step_threads()
if THREADS is not None:
    torch.set_num_threads(THREADS)
