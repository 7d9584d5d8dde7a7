import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: extra intra-op threads only add overhead (and suffer when the CPU is shared).
    Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
