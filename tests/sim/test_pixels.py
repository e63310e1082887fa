"""Camera observations for any task: shapes, dtype, batched rendering and image randomization."""

import gymnasium as gym
import numpy as np
import pytest
from tests_support import can_render

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)

pytestmark = pytest.mark.skipif(not can_render(), reason="no offscreen GL here (see scripts/ensure_gl.sh)")


def test_pixels_in_observation_and_space():
    env = gym.make("robolearn/PandaLift-v0", pixels={"cameras": ["front", "wrist"], "width": 64, "height": 48})
    obs, _ = env.reset(seed=0)
    for cam in ("front", "wrist"):
        img = obs[f"pixels/{cam}"]
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and img.std() > 5
    assert env.observation_space.contains(obs)
    obs2, *_ = env.step(np.zeros(5, np.float32))
    assert obs2["pixels/front"].shape == (48, 64, 3)


def test_image_randomization_changes_frames_reproducibly():
    kwargs = {"pixels": {"cameras": ["front"], "randomize": True}}
    env = gym.make("robolearn/PandaLift-v0", **kwargs)
    a = env.reset(seed=1)[0]["pixels/front"]
    b = env.reset(seed=1)[0]["pixels/front"]
    c = env.reset(seed=2)[0]["pixels/front"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_unknown_camera_is_named():
    with pytest.raises(ValueError, match="unknown camera 'top'"):
        gym.make("robolearn/PandaLift-v0", pixels={"cameras": ["top"]})


def test_batched_envs_render_pixels():
    """A batched env with cameras renders every env's frames; the threads backend steps them inline (GL
    context switches between pool threads cost more; the default for cameras is worker processes)."""
    from robolearn.sim.vector import make_vec_env

    vec = make_vec_env("robolearn/PandaLift-v0", 4, seed=0, backend="threads",
                       env_kwargs={"pixels": {"cameras": ["front"], "width": 32, "height": 32}})
    obs, _ = vec.reset(seed=0)
    for _ in range(3):
        obs, *_ = vec.step(vec.action_space.sample())
    assert obs["pixels/front"].shape == (4, 32, 32, 3) and obs["pixels/front"].dtype == np.uint8
    assert obs["pixels/front"].std() > 5
    assert vec.num_threads == 1
    vec.close()


def test_renderer_per_thread():
    """Rendering one env from two threads works (each thread gets its own GL context)."""
    import threading

    env = gym.make("robolearn/PandaLift-v0", pixels={"cameras": ["front"], "width": 32, "height": 32})
    env.reset(seed=0)
    base = env.unwrapped
    frames = []
    thread = threading.Thread(target=lambda: frames.append(base.pixels.render(base.data)["pixels/front"]))
    thread.start()
    thread.join()
    frames.append(base.pixels.render(base.data)["pixels/front"])
    assert len(frames) == 2 and np.array_equal(frames[0], frames[1])
    env.close()  # frees the thread's context from this one: it is left current nowhere (no EGL_BAD_ACCESS)
    assert base.pixels._all == []
