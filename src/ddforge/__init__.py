"""ddforge: distil image datasets into tiny synthetic ones, reproducibly."""
import os

# PyTorch backs large CPU tensors with transparent huge pages when this is set. It reads the variable
# once, at its first allocation, so it is set here, before anything imports torch. Without it each
# training step page-faults its large activations in 4 KiB pages, and expert training runs 1.6x
# slower on the development machine (docs/benchmarks.md). A value the user set is kept.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
