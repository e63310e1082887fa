"""Visual domain randomization: draws in range and reported, held-out disjoint from training, reproducible from
the seed, the physics untouched, the images changed."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from tests_support import can_render

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
from robolearn.core.config import ConfigError
from robolearn.sim.visual import ColorRange, VisualConfig, load_visual_preset

LIFT = "robolearn/PandaLift-v0"
TASKS = [LIFT, "robolearn/PandaPegInsert-v0"]
PIXELS = {"cameras": ["front", "wrist"], "width": 48, "height": 48}
needs_gl = pytest.mark.skipif(not can_render(), reason="no offscreen GL here (see scripts/ensure_gl.sh)")


def _disjoint(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[1] < b[0] or b[1] < a[0]


@pytest.mark.parametrize("env_id", TASKS)
def test_held_out_ranges_are_disjoint_from_training(env_id):
    train, held = load_visual_preset(env_id, "train"), load_visual_preset(env_id, "held-out")
    assert train.active and held.active
    for f in dataclasses.fields(VisualConfig):
        a, b = getattr(train, f.name), getattr(held, f.name)
        if isinstance(a, ColorRange):  # an HSV box is disjoint when one of its components is
            assert any(_disjoint(getattr(a, c), getattr(b, c)) for c in ("hue", "saturation", "value")), f.name
        elif isinstance(a, tuple):
            assert _disjoint(a, b), (f.name, a, b)
    assert train.table_texture_probability == 1.0 and held.table_texture_probability == 0.0


def _in(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] - 1e-9 <= value <= bounds[1] + 1e-9


@pytest.mark.parametrize("preset", ["train", "held-out"])
def test_draws_within_ranges_reported_and_applied(preset):
    cfg = load_visual_preset(LIFT, preset)
    env = gym.make(LIFT, visual=cfg)
    base = env.unwrapped
    for seed in range(5):
        _, info = env.reset(seed=seed)
        v = info["visual"]
        for name in ("light_tilt_deg", "light_diffuse_scale", "light_ambient", "noise_std", "blur_sigma_px"):
            assert _in(v[name], getattr(cfg, name)), (name, v[name])
        for cam in ("front", "wrist"):
            assert _in(v[f"camera_shift_m/{cam}"], cfg.camera_shift_m)
            assert _in(v[f"camera_rotation_deg/{cam}"], cfg.camera_rotation_deg)
        for part in ("object", "table"):
            box = getattr(cfg, f"{part}_color")
            assert all(_in(x, getattr(box, c)) for x, c in zip(v[f"{part}_hsv"], ("hue", "saturation", "value"),
                                                                strict=True))
        cube = base.model.geom_bodyid == base.model.body("cube").id
        np.testing.assert_allclose(base.model.geom_rgba[cube, :3], np.tile(v["object_rgb"], (cube.sum(), 1)), atol=1e-6)
        nominal = gym.make(LIFT).unwrapped.model
        cam = base.model.camera("front").id
        shift = np.linalg.norm(base.model.cam_pos[cam] - nominal.cam_pos[cam])
        assert shift == pytest.approx(v["camera_shift_m/front"], abs=1e-9)
        assert (preset == "train") == v.get("table_textured", True)


def test_draws_are_reproducible_from_the_seed_and_nominal_reports_nothing():
    env = gym.make(LIFT, visual=load_visual_preset(LIFT, "train"))
    a, b, c = (env.reset(seed=s)[1]["visual"] for s in (3, 3, 4))
    assert a == b != c
    assert gym.make(LIFT).reset(seed=0)[1]["visual"] == {}
    assert load_visual_preset(LIFT, "nominal") == VisualConfig()


@needs_gl
def test_physics_unchanged_by_visual_randomization():
    """Same seed, same actions: identical non-pixel observations, rewards and ends with and without it."""
    rng = np.random.default_rng(0)
    look = gym.make(LIFT, pixels=PIXELS, visual=load_visual_preset(LIFT, "held-out"),
                    randomization={"obs_noise_std": {"joint_pos": 0.01}, "push_force": [1.0, 5.0],
                                   "push_probability": 0.5})
    plain = gym.make(LIFT, pixels=PIXELS, randomization={"obs_noise_std": {"joint_pos": 0.01},
                                                         "push_force": [1.0, 5.0], "push_probability": 0.5})
    for seed in (0, 1):
        a, _ = plain.reset(seed=seed)
        b, _ = look.reset(seed=seed)
        for _ in range(15):
            _same_state(a, b)
            action = rng.uniform(-1, 1, 5).astype(np.float32)
            a, ra, ta, _, ia = plain.step(action)
            b, rb, tb, _, ib = look.step(action)
            assert ra == rb and ta == tb and ia["push_force"] == ib["push_force"]
        assert not np.array_equal(a["pixels/front"], b["pixels/front"])


def _same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for key in a:
        if not key.startswith("pixels/"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@needs_gl
def test_images_change_per_episode_and_noise_per_frame():
    env = gym.make(LIFT, pixels=PIXELS, visual=load_visual_preset(LIFT, "train"))
    f0 = env.reset(seed=0)[0]["pixels/front"]
    f0_again = env.reset(seed=0)[0]["pixels/front"]
    f1 = env.reset(seed=1)[0]["pixels/front"]
    assert np.array_equal(f0, f0_again) and np.abs(f0.astype(int) - f1).mean() > 3
    noisy = gym.make(LIFT, pixels=PIXELS, visual={"noise_std": [8.0, 8.0]})
    noisy.reset(seed=0)
    base = noisy.unwrapped
    frames = [base.visual.process(base.pixels.render(base.data))["pixels/front"] for _ in range(2)]
    clean = base.pixels.render(base.data)["pixels/front"]
    residual = frames[0].astype(float) - clean
    assert not np.array_equal(frames[0], frames[1]) and 6.0 < residual.std() < 10.0


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="no visual preset 'bogus'"):
        load_visual_preset(LIFT, "bogus")
    with pytest.raises(ConfigError, match="no geom or body named 'sphere'"):
        gym.make(LIFT, visual={"object_geoms": ["sphere"], "object_color": {}})
    with pytest.raises(ConfigError, match="unknown key 'hue'"):
        gym.make(LIFT, visual={"hue": [0, 1]})
    with pytest.raises(ConfigError, match="noise_std must be"):
        gym.make(LIFT, visual={"noise_std": [5.0, 1.0]})
    with pytest.raises(ValueError, match="drop pixels.randomize"):
        gym.make(LIFT, pixels={"cameras": ["front"], "randomize": True}, visual={"noise_std": [1.0, 2.0]})


@needs_gl
def test_batched_env_and_evaluate_take_the_visual_preset():
    from robolearn.sim.vector import make_vec_env

    vec = make_vec_env(LIFT, 2, seed=0, env_kwargs={"pixels": PIXELS, "visual": load_visual_preset(LIFT, "train")})
    _, info = vec.reset(seed=0)
    assert "noise_std" in info["visual"]
    vec.close()


def test_evaluation_env_settings_carry_the_visual_preset():
    from robolearn.evaluate import _env_kwargs, _EnvKey

    key = _EnvKey(LIFT, 1, "nominal", "held-out", "[]", "{}", None)
    assert _env_kwargs(key, {}, object())["visual"] == load_visual_preset(LIFT, "held_out")
    assert "visual" not in _env_kwargs(dataclasses.replace(key, visual="nominal"), {}, object())
