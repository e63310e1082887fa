"""One rule finds a run's newest checkpoint, for policy training (no pointer) and refinement (LATEST)."""

from __future__ import annotations

from robolearn.core.checkpoints import latest_checkpoint


def test_largest_step_without_a_pointer_and_the_pointer_when_there_is_one(tmp_path) -> None:
    assert latest_checkpoint(tmp_path) is None
    root = tmp_path / "checkpoints"
    for step in (5, 40, 300):
        (root / f"step_{step}").mkdir(parents=True)
    (root / "step_900.tmp").mkdir()  # being written
    assert latest_checkpoint(tmp_path) == root / "step_300"  # numeric, not lexical; .tmp ignored
    (root / "step_40" / "state.pt").write_bytes(b"")
    assert latest_checkpoint(tmp_path, required="state.pt") == root / "step_40"
    (root / "LATEST").write_text("step_40\n")
    assert latest_checkpoint(tmp_path) == root / "step_40"  # the pointer wins over a larger step
    (root / "LATEST").write_text("step_5")
    assert latest_checkpoint(tmp_path, required="state.pt") is None  # it points at an incomplete one
