"""The torch thread policy: commands set their count on purpose (one by default), a resumed pipeline too."""

from __future__ import annotations

import pytest
import torch

from robolearn.rl.threads import DEFAULT_THREADS, set_torch_threads


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_sets_the_count_and_zero_keeps_it() -> None:
    assert set_torch_threads() == DEFAULT_THREADS == torch.get_num_threads()
    torch.set_num_threads(2)
    assert set_torch_threads(0) == 2  # 0: leave torch's count as it is
    with pytest.raises(ValueError, match="threads must be >= 0"):
        set_torch_threads(-1)

