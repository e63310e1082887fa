"""``robolearn pipeline`` configuration: one YAML file describes the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robolearn.collect import CollectConfig
from robolearn.pipeline.layout import RunLayout
from robolearn.train import TrainConfig


@dataclass
class EvalStageConfig:
    """How policies are evaluated in sim."""

    episodes: int = 100
    """Episodes per policy and dynamics preset."""
    num_envs: int = 8
    """Envs stepped in lockstep."""
    dynamics: list[str] = field(default_factory=lambda: ["nominal", "real-gap"])
    """Dynamics presets to evaluate on (refined policies; the base too): nominal or a preset of the task's
    ``configs/dynamics/<task>.yaml``."""
    videos: int = 1
    """Videos recorded per policy (nominal dynamics)."""
    seed: int = 100_000
    """Seed of the first evaluation episode (held out from collection and refinement seeds)."""
    device: str = "auto"
    """Torch device the evaluated policies (and the ROS 2 stage's policy node) run on: auto, cpu, cuda, cuda:N or
    mps (:mod:`robolearn.rl.devices`). auto takes cuda if torch sees a GPU, else mps, else cpu: on a machine
    without an accelerator that is cpu, so the default changes nothing there. Training and each refinement
    branch have their own (``train.device``, a branch's ``settings.device``); the envs step on the CPU."""


@dataclass
class RefineStageConfig:
    """One refinement branch."""

    method: str = "residual"
    """The refinement method (``robolearn refine``'s ``method``); also the branch's name."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Keys of the refinement config (``robolearn refine`` preset keys), e.g. total_env_steps; the pipeline
    sets method, env_id, base and seed."""


@dataclass
class RosStageConfig:
    """Closed loop over ROS 2 against the MuJoCo robot twin."""

    enabled: bool = True
    """Run the refined policy through ROS 2 (needs the ``ros`` extra)."""
    episodes: int = 20
    """Episodes over ROS."""
    policy: str = "residual"
    """Which refined branch to deploy (its method name), or ``base``."""


SEED_STRIDE = 1000
"""Collection attempt seeds of pipeline seed ``s`` start at ``collect.seed + SEED_STRIDE * s`` (disjoint sets of
episodes for different pipeline seeds)."""


@dataclass
class PipelineConfig:
    """``robolearn pipeline <preset.yaml>``: demonstrations to a refined policy over ROS 2, with a report."""

    run_dir: str = "runs/pipeline/panda_lift"
    """Everything goes here; rerunning resumes."""
    env_id: str = "robolearn/PandaLift-v0"
    """The task."""
    seed: int = 0
    """Base seed of every stage: collection attempts start at ``collect.seed + SEED_STRIDE * seed``, training
    (batches, network initialisation) adds it to ``train.seed`` and ``train.policy.seed``, refinement uses it;
    the held-out evaluation seeds (``eval.seed``) stay the same for every run."""
    threads: int = 1
    """Torch CPU threads of the pipeline's process, set when it starts or resumes (0: torch's default, one per
    core); the train stage uses ``train.threads``. One is fastest where processes share the cores."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    """Demonstrations (``out`` is set to <run_dir>/data)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The base policy (``run_dir`` and ``data.path`` are set by the pipeline)."""
    eval: EvalStageConfig = field(default_factory=EvalStageConfig)
    """Sim evaluation of expert, base and refined policies."""
    refine: list[RefineStageConfig] = field(default_factory=lambda: [RefineStageConfig()])
    """Refinement branches, run in order."""
    ros: RosStageConfig = field(default_factory=RosStageConfig)
    """The ROS 2 closed loop."""

    @property
    def layout(self) -> RunLayout:
        """The paths of the run directory."""
        return RunLayout(Path(self.run_dir))
