"""Progress lines with rate and ETA for long loops (distillation, expert training, evaluation)."""
from __future__ import annotations

import logging
import time


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    def __init__(self, logger: logging.Logger, label: str, total: int, start: int = 0, every: int = 10) -> None:
        self.logger, self.label, self.total, self.every = logger, label, total, max(1, every)
        self.start_count = start
        self.t0 = time.monotonic()

    def update(self, done: int, **fields: float | str) -> None:
        """`done` counts completed units; logs every `every` units and at the end."""
        if done % self.every and done != self.total:
            return
        elapsed = time.monotonic() - self.t0
        rate = (done - self.start_count) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        shown = "  ".join(f"{k} {v:.5g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
        self.logger.info(
            "%s %d/%d  %s  %.2f/s  ETA %s",
            self.label, done, self.total, shown, rate, format_duration(eta) if eta == eta else "?",
        )
