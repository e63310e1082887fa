"""Every path of a pipeline run directory, named once.

    config.yaml                          the resolved pipeline config
    data/                                demonstrations (robolearn dataset)
    base/                                the base policy's training run and checkpoints
    eval/<policy>__<dynamics>.json       sim (and ROS 2) evaluation records
    eval/videos/<policy>/                their videos
    refine/<method>/                     each refinement branch: checkpoints/, curve.json, policy/
    ros/                                 the closed loop over ROS 2: episodes.json, logs/
    stages/<stage>.json                  a marker per finished stage (time and summary)
    plots/learning_curves.png            the report's plot
    report.html, report.md               the report

Stages, the report and the benches read paths from :class:`RunLayout` instead of joining strings, so a
new output is added here and nowhere else. The names are those of earlier runs: an existing run
directory resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REFINE_STAGE_PREFIX = "refine_"
"""A refinement branch's stage is ``refine_<method>`` (its marker ``stages/refine_<method>.json``)."""


@dataclass(frozen=True)
class RunLayout:
    """The files and folders of the pipeline run directory ``root``."""

    root: Path
    """The run directory (``PipelineConfig.run_dir``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        """The resolved pipeline config, ``config.yaml``."""
        return self.root / "config.yaml"

    @property
    def data(self) -> Path:
        """The demonstrations dataset (collect stage)."""
        return self.root / "data"

    @property
    def base(self) -> Path:
        """The base policy's training run: a policy directory the loader reads (train stage)."""
        return self.root / "base"

    @property
    def eval_dir(self) -> Path:
        """The evaluation records (``*.json``) and ``videos/``."""
        return self.root / "eval"

    def eval_record(self, policy: str, dynamics: str) -> Path:
        """The record of ``policy`` evaluated on the ``dynamics`` preset."""
        return self.eval_dir / f"{policy}__{dynamics}.json"

    def eval_videos(self, policy: str) -> Path:
        """The folder of ``policy``'s evaluation videos."""
        return self.eval_dir / "videos" / policy

    def ros_eval_record(self, policy: str) -> Path:
        """The record of ``policy`` (a branch's method or ``base``) run over ROS 2 (nominal dynamics)."""
        return self.eval_record(f"ros_{policy}", "nominal")

    @property
    def refine_dir(self) -> Path:
        """Parent of the refinement branches."""
        return self.root / "refine"

    def branch(self, method: str) -> Path:
        """The refinement branch ``method``'s run directory (its checkpoints, metrics and policy)."""
        return self.refine_dir / method

    def branch_checkpoints(self, method: str) -> Path:
        """The branch's learner checkpoints; a non-empty folder means the branch resumes."""
        return self.branch(method) / "checkpoints"

    def branch_curve(self, method: str) -> Path:
        """The branch's learning curve, ``[{"env_steps", "success_rate", "wall_s"}]``."""
        return self.branch(method) / "curve.json"

    def branch_policy(self, method: str) -> Path:
        """The branch's refined policy directory."""
        return self.branch(method) / "policy"

    def curves(self) -> list[Path]:
        """The learning curves of every refinement branch on disk, sorted by method."""
        return sorted(self.refine_dir.glob(f"*/{self.branch_curve('*').name}"))

    def policy(self, name: str) -> Path:
        """The directory of the policy called ``name``: ``base`` or a refinement branch's method."""
        return self.base if name == "base" else self.branch_policy(name)

    @property
    def ros_dir(self) -> Path:
        """The closed loop over ROS 2."""
        return self.root / "ros"

    @property
    def ros_logs(self) -> Path:
        """One log file per ROS 2 node."""
        return self.ros_dir / "logs"

    @property
    def ros_episodes(self) -> Path:
        """The episodes the robot twin reported over ROS 2."""
        return self.ros_dir / "episodes.json"

    @property
    def stages_dir(self) -> Path:
        """The stage markers."""
        return self.root / "stages"

    def stage_marker(self, stage: str) -> Path:
        """The marker of the finished stage ``stage`` (its time and summary)."""
        return self.stages_dir / f"{stage}.json"

    def refine_markers(self) -> list[Path]:
        """The markers of the finished refinement branches."""
        return sorted(self.stages_dir.glob(f"{REFINE_STAGE_PREFIX}*.json"))

    @property
    def learning_curves_plot(self) -> Path:
        """The report's plot of every branch's success rate against environment steps."""
        return self.root / "plots" / "learning_curves.png"

    @property
    def report_html(self) -> Path:
        """The self-contained HTML report."""
        return self.root / "report.html"

    @property
    def report_md(self) -> Path:
        """The Markdown report (links files by relative path)."""
        return self.root / "report.md"


def refine_stage_name(method: str) -> str:
    """The stage name of the refinement branch ``method``."""
    return f"{REFINE_STAGE_PREFIX}{method}"
