"""Pipeline stages: completed stages are skipped, an interrupted one reruns, --force reruns from a stage."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import yaml

from robolearn.pipeline.layout import RunLayout
from robolearn.pipeline.stages import Stage, StageRunner


def _stage(name, calls, outputs=()):
    def fn():
        calls.append(name)
        return {"value": len(calls)}

    return Stage(name, fn, outputs)


def test_completed_stages_are_skipped(tmp_path):
    calls = []
    stages = [_stage(n, calls) for n in ("a", "b", "c")]
    first = StageRunner(tmp_path, stages, log=lambda _: None).run()
    assert calls == ["a", "b", "c"] and first["c"]["value"] == 3
    second = StageRunner(tmp_path, stages, log=lambda _: None).run()
    assert calls == ["a", "b", "c"] and second["c"]["value"] == 3
    assert json.loads(RunLayout(tmp_path).stage_marker("b").read_text())["stage"] == "b"


def test_force_reruns_from_a_stage_and_clears_its_outputs(tmp_path):
    calls = []
    stages = [_stage("a", calls), _stage("b", calls, (tmp_path / "b_out",)), _stage("c", calls)]
    runner = StageRunner(tmp_path, stages, log=lambda _: None)
    runner.run()
    (tmp_path / "b_out").mkdir()
    runner.force("b")
    assert not (tmp_path / "b_out").exists()
    runner.run()
    assert calls == ["a", "b", "c", "b", "c"]
    with pytest.raises(ValueError, match="unknown stage 'z'"):
        runner.force("z")


def test_a_background_stage_runs_beside_the_next_ones_and_the_waiting_stage_joins_it(tmp_path):
    """The background stage blocks until a later foreground stage has run, so the run finishes only if the
    two ran at the same time; the waiting stage sees the background stage's marker."""
    started, calls = threading.Event(), []
    layout = RunLayout(tmp_path)

    def ros():
        assert started.wait(30), "the foreground stage never ran beside the background one"
        calls.append("ros")
        return {}

    def dsrl():
        started.set()
        calls.append("dsrl")
        return {}

    def report():
        assert layout.stage_marker("ros").is_file()
        calls.append("report")
        return {}

    stages = [_stage("residual", calls), Stage("ros", ros, background=True), Stage("dsrl", dsrl),
              Stage("report", report, waits=True)]
    results = StageRunner(tmp_path, stages, log=lambda _: None).run()
    assert calls[0] == "residual" and calls[-1] == "report" and set(calls[1:3]) == {"ros", "dsrl"}
    assert list(results) == ["residual", "ros", "dsrl", "report"]
    runner = StageRunner(tmp_path, stages, log=lambda _: None)
    runner.force("ros")  # reruns the stages that wait for it, not the foreground stage listed after it
    assert layout.stage_marker("dsrl").is_file() and not layout.stage_marker("report").exists()


def test_a_failing_foreground_stage_cancels_the_background_one(tmp_path):
    """Ctrl-C or an error in the foreground asks the background stage to stop and joins it before raising."""
    stop, calls = threading.Event(), []

    def ros():
        assert stop.wait(30)
        calls.append("ros stopped")
        return {}

    def boom():
        raise RuntimeError("branch failed")

    stages = [Stage("ros", ros, background=True, cancel=stop.set), Stage("dsrl", boom)]
    with pytest.raises(RuntimeError, match="branch failed"):
        StageRunner(tmp_path, stages, log=lambda _: None).run()
    assert calls == ["ros stopped"]


def test_a_background_stage_error_is_raised_when_joined(tmp_path):
    def ros():
        raise RuntimeError("no episode finished over ROS 2")

    stages = [Stage("ros", ros, background=True), _stage("dsrl", []), Stage("report", lambda: {}, waits=True)]
    with pytest.raises(RuntimeError, match="no episode finished"):
        StageRunner(tmp_path, stages, log=lambda _: None).run()
    assert RunLayout(tmp_path).stage_marker("dsrl").is_file()
    assert not RunLayout(tmp_path).stage_marker("report").exists()


def test_the_ros_stage_starts_after_the_policy_it_deploys():
    """With ros.overlap the closed loop follows its branch (beside the later ones); without, it runs last."""
    from robolearn.core.config import load_config
    from robolearn.pipeline.config import PipelineConfig
    from robolearn.pipeline.pipeline import build_stages

    preset = Path(__file__).resolve().parents[2] / "configs/pipelines/panda_lift.yaml"
    cfg = load_config(PipelineConfig, preset, [])
    names = [s.name for s in build_stages(cfg)]
    assert names.index("ros") == names.index("refine_residual") + 1 < names.index("refine_dsrl")
    cfg = load_config(PipelineConfig, preset, ["ros.overlap=false"])
    assert [s.name for s in build_stages(cfg)][-2:] == ["ros", "report"]
    cfg = load_config(PipelineConfig, preset, ["ros.policy=base"])
    names = [s.name for s in build_stages(cfg)]
    assert names.index("ros") == names.index("eval_base") + 1


def test_a_preset_widens_the_safety_limits_its_task_needs():
    """QuadGates' course is wider than the default geofence: its preset's ros.safety reaches the safety node."""
    from robolearn.core.config import load_config
    from robolearn.pipeline.branches import deploy_config
    from robolearn.pipeline.config import PipelineConfig

    preset = Path(__file__).resolve().parents[2] / "configs/pipelines/quad_gates.yaml"
    safety = deploy_config(load_config(PipelineConfig, preset, [])).params["safety"]
    assert safety["limits.geofence_radius"] == 4.5 and safety["limits.max_tilt"] == 1.5
    assert safety["limits.watchdog_timeout"] == 0.1


def test_a_failed_stage_leaves_no_marker_and_reruns(tmp_path):
    calls = []

    def boom():
        calls.append("boom")
        raise RuntimeError("stage failed")

    stages = [_stage("a", calls), Stage("b", boom)]
    with pytest.raises(RuntimeError):
        StageRunner(tmp_path, stages, log=lambda _: None).run()
    assert not RunLayout(tmp_path).stage_marker("b").exists()
    with pytest.raises(RuntimeError):
        StageRunner(tmp_path, stages, log=lambda _: None).run()
    assert calls == ["a", "boom", "boom"]


def test_sigkill_mid_stage_then_resume(tmp_path):
    """A pipeline killed inside a stage resumes at that stage; earlier stages are not redone."""
    script = tmp_path / "pipe.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from robolearn.pipeline.stages import Stage, StageRunner
        run = Path({str(tmp_path / "run")!r})
        log = run / "calls.txt"
        def mark(name):
            run.mkdir(exist_ok=True)
            with open(log, "a") as f:
                f.write(name + "\\n")
        def slow():
            mark("slow")
            if sys.argv[1] == "hang":
                print("in slow stage", flush=True)
                time.sleep(60)
            return {{}}
        stages = [Stage("fast", lambda: (mark("fast"), {{}})[1]), Stage("slow", slow)]
        StageRunner(run, stages, log=lambda _: None).run()
    """))
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, str(script), "hang"], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "in slow stage"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run([sys.executable, str(script), "finish"], check=True, env=env)
    calls = (tmp_path / "run" / "calls.txt").read_text().split()
    assert calls == ["fast", "slow", "slow"]
    assert RunLayout(tmp_path / "run").stage_marker("slow").is_file()


@pytest.mark.slow
def test_the_pipeline_seed_reaches_collection_and_training(tmp_path):
    """``seed: s`` collects other episodes (attempt seeds from ``SEED_STRIDE * s``) and initialises and batches
    the base with other seeds; seed 0 keeps the stages' own seeds."""
    from robolearn.core.config import load_config
    from robolearn.datasets.reader import EpisodeDataset
    from robolearn.pipeline.config import SEED_STRIDE, PipelineConfig
    from robolearn.pipeline.pipeline import build_stages

    root = Path(__file__).resolve().parents[2]
    tiny = ["collect.episodes=2", "collect.num_envs=2", "train.steps=2", "train.save_every=2", "train.log_every=1",
            "train.progress=false"]
    for seed in (0, 2):
        cfg = load_config(PipelineConfig, root / "configs/pipelines/panda_lift.yaml",
                          [f"run_dir={tmp_path / str(seed)}", f"seed={seed}", *tiny])
        collect, train = build_stages(cfg)[:2]
        collect.fn()
        train.fn()
        seeds = sorted(r.seed for r in EpisodeDataset(cfg.layout.data).records)
        assert seeds == [SEED_STRIDE * seed, SEED_STRIDE * seed + 1]
        saved = yaml.safe_load((cfg.layout.base / "config.yaml").read_text())
        assert saved["seed"] == cfg.train.seed + seed and saved["policy"]["seed"] == cfg.train.policy.seed + seed
