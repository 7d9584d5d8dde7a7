"""`import ddforge` turns on PyTorch's huge-page allocation for large CPU tensors (1.6x faster expert
training on the development machine), before torch reads the setting, and a user's value wins."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
MODE = re.search(r"\[(\w+)\]", THP.read_text()).group(1) if THP.exists() else "never"

PROBE = """
import ddforge, torch, re
x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
rollup = open('/proc/self/smaps_rollup').read()
print(int(re.search(r'AnonHugePages:\\s+(\\d+)', rollup).group(1)))
"""


def _huge_kib(**env: str) -> int:
    base = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(MODE != "madvise", reason=f"transparent huge pages are '{MODE}' here, not 'madvise'")
def test_large_tensors_get_huge_pages_unless_the_user_says_otherwise():
    assert _huge_kib() >= 32 * 1024
    assert _huge_kib(THP_MEM_ALLOC_ENABLE="0") == 0
