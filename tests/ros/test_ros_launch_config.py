"""Deploy presets, the node environment and the policy worker's chunk queue (no ROS graph)."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from robolearn.core.config import ConfigError, load_config
from robolearn.ros_nodes.launcher import DeployConfig
from robolearn.ros_nodes.policy_runner import LoopStats, PolicyRunner
from robolearn.ros_nodes.rosenv import ros_env

ROOT = Path(__file__).resolve().parents[2]


def test_panda_sim_preset_loads_with_overrides():
    cfg = load_config(DeployConfig, ROOT / "configs/deploy/panda_sim.yaml", ["params.policy.control_hz=50"])
    assert cfg.nodes == ["sim_robot", "policy", "safety"] and cfg.params["policy"]["control_hz"] == 50


@pytest.mark.parametrize("name", ["panda_sim", "panda_sim_inline", "g1_push_recovery_sim", "quad_hover_sim"])
def test_every_embodiment_has_a_deploy_preset_at_its_control_rate(name):
    from robolearn.sim.registry import gym_make

    cfg = load_config(DeployConfig, ROOT / f"configs/deploy/{name}.yaml")
    rate = gym_make(cfg.env_id).unwrapped.control_hz
    assert cfg.params["sim_robot"]["step_hz"] == cfg.params["policy"]["control_hz"] == rate  # real time


def test_deploy_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="unknown nodes \\['planner'\\]"):
        DeployConfig(nodes=["sim_robot", "planner"])
    with pytest.raises(ConfigError, match="domain_id must be in 0..101"):
        DeployConfig(domain_id=300)


def test_ros_env_sets_domain_and_localhost_discovery():
    env = ros_env(17, base={"ROS_LOCALHOST_ONLY": "1"})
    assert env["ROS_DOMAIN_ID"] == "17" and env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert "ROS_LOCALHOST_ONLY" not in env and env["RMW_IMPLEMENTATION"] == "rmw_fastrtps_cpp"
    with pytest.raises(ValueError, match="0..101"):
        ros_env(102)


class CountingChunkPolicy:
    """Returns a chunk of 4 actions whose value is the number of ``act`` calls so far."""

    noise_shape = None

    def __init__(self) -> None:
        self.calls, self.observed, self.resets = 0, 0, 0

    def act(self, obs, noise=None):
        self.calls += 1
        return np.full((1, 4, 2), float(self.calls), np.float32)

    def observe(self, obs) -> None:
        self.observed += 1

    def reset(self, env_ids=None) -> None:
        self.resets += 1


def wait_for(predicate, timeout: float = 2.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not predicate():
        time.sleep(0.002)
    return predicate()


def test_runner_replans_every_ta_actions_and_observes_in_between():
    policy, chunks = CountingChunkPolicy(), []
    runner = PolicyRunner(policy, replan_every=2, on_chunk=lambda: chunks.append(1))
    obs = {"x": np.zeros(3, np.float32)}
    try:
        runner.push(obs, {"episode": 0, "step": 0, "stamp": 0.0})
        assert wait_for(lambda: len(chunks) == 1)
        assert runner.pop()[0] == 1.0
        runner.push(obs, {"episode": 0, "step": 1, "stamp": 0.0})  # 1 of Ta=2 executed: observe only
        assert wait_for(lambda: policy.observed == 1)
        assert runner.pop()[0] == 1.0 and runner.pop() is None  # the chunk was cut to Ta = 2
        runner.push(obs, {"episode": 0, "step": 2, "stamp": 0.0})
        assert wait_for(lambda: len(chunks) == 2) and runner.pop()[0] == 2.0
        runner.push(obs, {"episode": 1, "step": 0, "stamp": 0.0})  # new episode: reset, fresh chunk
        assert wait_for(lambda: len(chunks) == 3) and policy.resets == 2
    finally:
        runner.stop()
    assert runner.error is None


class OneActionPolicy:
    """One-action chunks with a ``prepare`` step (the residual's shape); logs each call and its thread."""

    def __init__(self, prepare_s: float = 0.0) -> None:
        self.events: list[str] = []
        self.prepare_s = prepare_s

    def _log(self, what: str, obs) -> None:
        self.events.append(f"{what} {int(obs['x'][0, 0])} in {threading.current_thread().name}")

    def act(self, obs, noise=None):
        self._log("act", obs)
        return np.full((1, 1, 2), obs["x"][0, 0], np.float32)

    def prepare(self, obs) -> None:
        self._log("prepare", obs)
        time.sleep(self.prepare_s)  # the base's next chunk

    def reset(self, env_ids=None) -> None:
        pass


def test_runner_calls_prepare_after_each_chunk_is_queued():
    """A one-action-chunk policy with ``prepare`` (the residual): each observation's action is queued (and
    on_chunk fired) before ``prepare`` runs for it, and an observation arriving meanwhile is acted on after."""
    policy = OneActionPolicy(prepare_s=0.05)
    events = policy.events
    runner = PolicyRunner(policy, on_chunk=lambda: events.append("chunk"), prepare=True)
    try:
        runner.push({"x": np.zeros(3, np.float32)}, {"episode": 0, "step": 0, "stamp": 0.0})
        assert wait_for(lambda: "prepare 0 in policy-worker" in events) and runner.pop()[0] == 0.0
        runner.push({"x": np.ones(3, np.float32)}, {"episode": 0, "step": 1, "stamp": 0.0})  # during prepare 0
        assert wait_for(lambda: "prepare 1 in policy-worker" in events) and runner.pop()[0] == 1.0
    finally:
        runner.stop()
    assert [e.removesuffix(" in policy-worker") for e in events] == ["act 0", "chunk", "prepare 0", "act 1", "chunk",
                                                                    "prepare 1"], events
    assert runner.error is None and len(runner.prepare_ms) == 2 and min(runner.prepare_ms) >= 50.0


def test_act_now_answers_a_one_action_policy_in_the_callers_thread():
    """act_now (policy_node's act_in_callback): after the first chunk shows the policy's chunks are one action
    long, the caller computes the next observation's action itself (no on_chunk hand-off) and the worker runs
    its prepare; a chunked policy is left to the worker."""
    policy = OneActionPolicy()
    events = policy.events
    runner = PolicyRunner(policy, on_chunk=lambda: events.append("chunk"), prepare=True)
    try:
        assert not runner.act_now()  # nothing pushed
        runner.push({"x": np.zeros(3, np.float32)}, {"episode": 0, "step": 0, "stamp": 0.0})
        assert wait_for(lambda: "prepare 0 in policy-worker" in events) and runner.pop()[0] == 0.0
        runner.push({"x": np.ones(3, np.float32)}, {"episode": 0, "step": 1, "stamp": 0.0}, wake=False)
        assert runner.act_now() and runner.pop()[0] == 1.0
        assert wait_for(lambda: "prepare 1 in policy-worker" in events)
    finally:
        runner.stop()
    main = threading.current_thread().name
    assert events == ["act 0 in policy-worker", "chunk", "prepare 0 in policy-worker", f"act 1 in {main}",
                      "prepare 1 in policy-worker"], events
    chunked = PolicyRunner(CountingChunkPolicy())
    try:
        chunked.push({"x": np.zeros(3, np.float32)}, {"episode": 0, "step": 0, "stamp": 0.0})
        assert wait_for(lambda: chunked.pop() is not None)
        chunked.push({"x": np.zeros(3, np.float32)}, {"episode": 0, "step": 1, "stamp": 0.0}, wake=False)
        assert not chunked.act_now()  # four-action chunks: the worker's job (with lead)
    finally:
        chunked.stop()


def test_runner_reports_a_failing_policy():
    class Broken(CountingChunkPolicy):
        def act(self, obs, noise=None):
            raise RuntimeError("boom")

    runner = PolicyRunner(Broken())
    try:
        runner.push({"x": np.zeros(1)}, {"episode": 0, "step": 0, "stamp": 0.0})
        assert wait_for(lambda: runner.error is not None) and "boom" in runner.error
    finally:
        runner.stop()


def test_loop_stats_summary():
    stats = LoopStats(0.01)
    for i in range(5):
        stats.published_at(i * 0.01, i * 0.01 - 0.001)
    s = stats.summary()
    assert s["published"] == 5 and s["interval_mean_ms"] == pytest.approx(10.0)
    assert s["latency_p50_ms"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["panda_sim", "panda_sim_inline", "g1_push_recovery_sim", "quad_hover_sim"])
def test_colcon_params_and_launch_files_match_the_deploy_presets(name):
    import yaml

    from robolearn.ros_nodes.launch_description import preset_nodes
    from robolearn.ros_nodes.launcher import ros_params

    cfg = load_config(DeployConfig, ROOT / f"configs/deploy/{name}.yaml")
    params = ROOT / f"ros_nodes/params/{name}.yaml"
    assert yaml.safe_load(params.read_text()) == ros_params(cfg), (
        f"{params} differs from configs/deploy/{name}.yaml: regenerate it with ros_params()")
    assert preset_nodes(params) == cfg.nodes
    launch = (ROOT / f"ros_nodes/launch/{name}.launch.py").read_text()
    compile(launch, f"{name}.launch.py", "exec")
    assert f'preset_launch_description("{name}")' in launch


def test_runner_with_lead_refills_the_queue_before_it_runs_dry():
    """lead=1, Ta=4: the chunk from the observation of step 3 lands while step 3's action (the old chunk's
    last) is out, so it drops its own first action and step 4 is answered from the queue at once; a chunk
    then serves Ta - lead new steps (replans at steps 0, 3, 6)."""
    policy, chunks = CountingChunkPolicy(), []
    runner = PolicyRunner(policy, on_chunk=lambda: chunks.append(1), lead=1)
    obs = {"x": np.zeros(3, np.float32)}
    sent = []
    try:
        for step in range(9):
            runner.push(obs, {"episode": 0, "step": step, "stamp": 0.0})
            action = runner.pop()
            if action is None:  # only the very first step waits for inference
                assert step == 0 and wait_for(lambda: len(chunks) == 1)
                action = runner.pop()
            sent.append(float(action[0]))
            assert wait_for(lambda s=step: runner.handled == s + 1) and len(chunks) == 1 + step // 3
        assert sent == [1, 1, 1, 1, 2, 2, 2, 3, 3] and policy.calls == 3 and policy.observed == 6
        runner.push(obs, {"episode": 1, "step": 0, "stamp": 0.0})  # a new episode empties the queue at once
        assert runner.pop() is None and wait_for(lambda: len(chunks) == 4) and runner.pop()[0] == 4.0
    finally:
        runner.stop()
    assert runner.error is None and runner.dropped == 0


def test_auto_lead_follows_the_measured_inference_time():
    """lead=-1 at a 10 ms period: a policy that takes ~25 ms per chunk needs 1.25 * 25 ms -> 4 periods of lead
    (capped at Ta - 1 = 3 by the queue); before any chunk the lead is 1; none where a chunk fits in half a period."""

    class Slow(CountingChunkPolicy):
        def act(self, obs, noise=None):
            time.sleep(0.025)
            return super().act(obs, noise)

    with pytest.raises(ValueError, match="needs the control period"):
        PolicyRunner(Slow(), lead=-1)
    runner = PolicyRunner(Slow(), lead=-1, period=0.01)
    try:
        assert runner.current_lead() == 1
        for step in range(3):
            runner.push({"x": np.zeros(3, np.float32)}, {"episode": 0, "step": step, "stamp": 0.0})
            assert wait_for(lambda s=step: runner.handled == s + 1)
        assert runner.infer_ms and runner.current_lead() == 3  # 4 periods needed, capped by the chunk
    finally:
        runner.stop()
    assert runner.error is None
    # at a 200 ms period the same 25 ms chunk fits in half a period: no lead, plans from the newest observation
    relaxed = PolicyRunner(Slow(), lead=-1, period=0.2)
    try:
        relaxed.push({"x": np.zeros(3, np.float32)}, {"episode": 0, "step": 0, "stamp": 0.0})
        assert wait_for(lambda: relaxed.handled == 1) and relaxed.current_lead() == 0
    finally:
        relaxed.stop()


@pytest.mark.parametrize("chunk", [16, 4])
def test_auto_lead_covers_the_slowest_recent_chunk(chunk):
    """Twenty 5 ms chunks and one of 45 ms at a 10 ms period: 1.25x the p90 alone asks for one period of lead,
    which the slow chunk would overrun (the queue runs dry, a period is missed); the lead covers 45 ms as long
    as that is at most half the chunk (16 actions: 5; 4 actions: 2, so that inference does not run nonstop)."""

    class Spiky(CountingChunkPolicy):
        def act(self, obs, noise=None):
            time.sleep(0.045 if self.calls == 10 else 0.005)
            self.calls += 1
            return np.full((1, chunk, 2), float(self.calls), np.float32)

    runner = PolicyRunner(Spiky(), lead=-1, period=0.01)
    try:
        for step in range(21):
            runner.push({"x": np.zeros(3, np.float32)}, {"episode": 0, "step": step, "stamp": 0.0})
            assert wait_for(lambda s=step: runner.handled == s + 1)
            while runner.pop() is not None:  # an empty queue: the next observation starts a chunk
                pass
        recent = np.asarray(runner.infer_ms)
        assert len(recent) == 21 and recent.max() >= 45.0
        typical = math.ceil(1.25 * np.percentile(recent, 90) / 10.0)
        assert typical < chunk // 2
        assert runner.current_lead() == max(typical, min(math.ceil(recent.max() / 10.0), chunk // 2))
        assert runner.current_lead() >= 5 if chunk == 16 else runner.current_lead() == 2
    finally:
        runner.stop()
    assert runner.error is None


def test_set_realtime_puts_threads_on_fifo_but_the_excluded_worker():
    import subprocess
    import sys

    from robolearn.ros_nodes.rosenv import set_realtime

    with pytest.raises(ValueError, match="1..99"):
        set_realtime(0)
    script = (
        "import os, threading, time\n"
        "from robolearn.ros_nodes.rosenv import set_realtime\n"
        "t = threading.Thread(target=time.sleep, args=(1,)); t.start()\n"
        "try:\n"
        "    n = set_realtime(5, exclude={t.native_id})\n"
        "except PermissionError as err:\n"
        "    print('refused', err); raise SystemExit(0)\n"
        "print(n, os.sched_getscheduler(0) == os.SCHED_FIFO, os.sched_getscheduler(t.native_id) == os.SCHED_OTHER)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    if words[0] == "refused":  # not root and no CAP_SYS_NICE: the error says how to allow it
        assert "CAP_SYS_NICE" in out.stdout
    else:
        assert int(words[0]) >= 1 and words[1:] == ["True", "True"], out.stdout


def test_reserve_fills_in_while_the_next_chunk_is_late():
    """Chunks of 8 predicted actions (100 * call + index), 4 executed per chunk, lead 1: while the second chunk
    (planned from step 3) is held back, the first chunk's predictions 4..7 go out instead of nothing; the late
    chunk then starts at the step after the last one served, from its own reserve. With lead 0 the boundary
    waits for the fresh chunk instead (planned from the newest observation)."""
    release = threading.Event()

    class Ahead(CountingChunkPolicy):
        def act(self, obs, noise=None):
            self.calls += 1
            if self.calls == 2:
                assert release.wait(5.0)
            return (100.0 * self.calls + np.arange(8, dtype=np.float32))[None, :, None]

    chunks = []
    runner = PolicyRunner(Ahead(), replan_every=4, lead=1, reserve=True, on_chunk=lambda: chunks.append(1))
    sent = []
    try:
        for step in range(7):
            runner.push({"x": np.zeros(3, np.float32)}, {"episode": 0, "step": step, "stamp": 0.0})
            if step == 0:
                assert wait_for(lambda: len(chunks) == 1)
            if step == 3:  # one action left: the worker has taken step 3's observation and is planning from it
                assert wait_for(lambda: runner.policy.calls == 2)
            action = runner.pop()
            assert action is not None, f"step {step}: nothing to send"
            sent.append(float(action[0]))
        assert sent == [100, 101, 102, 103, 104, 105, 106] and runner.reserve_used == 3
        release.set()  # the second chunk arrives 3 steps late: its actions 0-3 are for steps 3-6, already served
        assert wait_for(lambda: len(chunks) == 2)
        rest = [float(runner.pop()[0]) for _ in range(4)]
        assert rest == [204, 205, 206, 207] and runner.pop() is None and runner.reserve_used == 7
    finally:
        release.set()
        runner.stop()
    assert runner.error is None
    on_time = PolicyRunner(CountingChunkPolicy(), replan_every=2, lead=0, reserve=True)
    try:
        on_time.push({"x": np.zeros(3, np.float32)}, {"episode": 0, "step": 0, "stamp": 0.0})
        assert wait_for(lambda: on_time.handled == 1)
        assert [float(on_time.pop()[0]) for _ in range(2)] == [1, 1] and on_time._reserve
        assert on_time.pop() is None and on_time.reserve_used == 0
    finally:
        on_time.stop()


def test_loop_stats_tells_starved_missed_periods_apart():
    """Missed periods are counted, and those in which the action queue was empty (inference late) apart."""
    stats = LoopStats(period=0.01)
    for t in (0.0, 0.01, 0.02):
        stats.published_at(t, t - 0.001)
    stats.count_missed(2, starved=True)
    stats.published_at(0.05, 0.049)
    stats.count_missed(1, starved=False)
    stats.published_at(0.07, 0.069)
    out = stats.summary()
    assert out["published"] == 5 and out["missed_periods"] == 3 and out["missed_starved"] == 2
    assert out["interval_max_ms"] == pytest.approx(30.0) and out["latency_p50_ms"] == pytest.approx(1.0)
