"""The run layout keeps the names earlier runs wrote (so they resume), and the pipeline package imports one way."""

from __future__ import annotations

import ast
from pathlib import Path

from robolearn.pipeline.config import PipelineConfig
from robolearn.pipeline.layout import RunLayout, refine_stage_name

PACKAGE = Path(__file__).resolve().parents[2] / "robolearn" / "pipeline"


def test_paths_are_those_of_earlier_runs():
    layout = RunLayout(Path("run"))
    rel = {
        "config.yaml": layout.config, "data": layout.data, "base": layout.base, "eval": layout.eval_dir,
        "eval/base__real-gap.json": layout.eval_record("base", "real-gap"),
        "eval/videos/base (zero noise)": layout.eval_videos("base (zero noise)"),
        "eval/ros_residual__nominal.json": layout.ros_eval_record("residual"),
        "refine/dsrl": layout.branch("dsrl"), "refine/dsrl/checkpoints": layout.branch_checkpoints("dsrl"),
        "refine/dsrl/curve.json": layout.branch_curve("dsrl"), "refine/dsrl/policy": layout.branch_policy("dsrl"),
        "ros/logs": layout.ros_logs, "ros/episodes.json": layout.ros_episodes,
        "stages/refine_dsrl.json": layout.stage_marker(refine_stage_name("dsrl")),
        "plots/learning_curves.png": layout.learning_curves_plot,
        "report.html": layout.report_html, "report.md": layout.report_md,
    }
    for name, path in rel.items():
        assert path == Path("run") / name, name
    assert layout.policy("base") == layout.base and layout.policy("residual") == Path("run/refine/residual/policy")
    assert PipelineConfig(run_dir="runs/x").layout == RunLayout(Path("runs/x"))


def test_globs_find_what_the_stages_write(tmp_path):
    layout = RunLayout(tmp_path)
    for method in ("residual", "dsrl"):
        layout.branch(method).mkdir(parents=True)
        layout.branch_curve(method).write_text("[]")
    layout.stages_dir.mkdir()
    for stage in ("collect", refine_stage_name("residual")):
        layout.stage_marker(stage).write_text("{}")
    assert layout.curves() == [layout.branch_curve("dsrl"), layout.branch_curve("residual")]
    assert layout.refine_markers() == [layout.stage_marker("refine_residual")]


def _imports(path: Path) -> set[str]:
    """The ``robolearn.pipeline`` modules ``path`` imports (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("robolearn.pipeline."):
            names.add(node.module.removeprefix("robolearn.pipeline."))
        elif isinstance(node, ast.Import):
            names |= {a.name.removeprefix("robolearn.pipeline.") for a in node.names
                      if a.name.startswith("robolearn.pipeline.")}
    return names


def test_the_package_imports_one_way():
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    order: list[str] = []
    while len(order) < len(graph):  # peel off modules whose imports are all placed: fails on a cycle
        ready = sorted(m for m, deps in graph.items() if m not in order and deps <= set(order))
        assert ready, f"import cycle among {sorted(set(graph) - set(order))}"
        order += ready
    assert not graph["layout"] and order[-1] == "pipeline", order  # the layout at the bottom, pipeline on top
    assert not any("pipeline" in deps for deps in graph.values())  # nothing imports the top
