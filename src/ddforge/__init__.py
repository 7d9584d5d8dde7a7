"""ddforge: distil image datasets into tiny synthetic ones, reproducibly."""

__version__ = "0.1.0"
