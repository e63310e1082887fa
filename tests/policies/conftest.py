"""Policy tests: one torch thread, and the global RNG restored after each test."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _few_threads():
    """Run the policy tests on one thread and restore the global RNG afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: one thread is faster, and robust on a shared machine
    with torch.random.fork_rng(devices=[]):
        yield
    torch.set_num_threads(n)
