"""A resumed pipeline sets its torch thread count (``threads``) before any stage runs."""

from __future__ import annotations

import torch

from robolearn.pipeline import pipeline as pipeline_module
from robolearn.pipeline.config import PipelineConfig


def test_a_pipeline_sets_its_threads_when_it_resumes(tmp_path, monkeypatch) -> None:
    cfg = PipelineConfig(run_dir=str(tmp_path), threads=1)
    cfg.ros.enabled = False
    monkeypatch.setattr(pipeline_module, "build_stages", lambda _cfg: [])  # every stage already done
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pipeline_module.run_pipeline(cfg)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
