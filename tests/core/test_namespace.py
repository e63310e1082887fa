"""The top-level folders import as robolearn.*, and never shadow another library from the repo root."""

import subprocess
import sys
import zipfile

import pytest


def _run(code: str, cwd, env_extra=None) -> str:
    import os

    env = {**os.environ, **(env_extra or {})}
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_subpackages_import_as_one_namespace():
    import robolearn.datasets
    import robolearn.policies
    import robolearn.ros_nodes
    import robolearn.sim
    from robolearn.sim.registry import TASKS

    assert TASKS
    for module in (robolearn.sim, robolearn.policies, robolearn.datasets, robolearn.ros_nodes):
        assert module.__name__.startswith("robolearn.")


@pytest.mark.parametrize("name", ["datasets", "sim", "policies"])
def test_repo_root_does_not_shadow_a_library(tmp_path, repo_root, name):
    """A regular package of the same name elsewhere on sys.path wins over our top-level folder."""
    lib = tmp_path / "lib" / name
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("WHO = 'the other library'\n")
    who = _run(f"import {name}; print({name}.WHO)", repo_root, {"PYTHONPATH": str(tmp_path / "lib")})
    assert who == "the other library"


def test_hugging_face_datasets_is_found_from_repo_root(repo_root):
    pytest.importorskip("datasets", reason="Hugging Face datasets is in the dev extra")
    path = _run("import datasets; print(datasets.__file__)", repo_root)
    assert "site-packages" in path and not path.startswith(str(repo_root / "datasets"))
    # and from inside pytest too (this process runs from the repo root)
    import datasets

    assert "site-packages" in datasets.__file__


def test_wheel_maps_folders_into_robolearn(tmp_path, repo_root):
    """`pip install .` builds a wheel whose files all live under robolearn/."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(repo_root)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("robolearn-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if not n.startswith("robolearn-")]
    assert "robolearn/sim/arm/panda_lift.py" in names
    assert "robolearn/sim/registry.py" in names
    assert all(n.startswith("robolearn/") for n in code), [n for n in code if not n.startswith("robolearn/")]
    assert not any(n.startswith(("sim/", "datasets/", "policies/")) for n in names)


def test_importing_policies_registers_nothing(repo_root):
    """Importing a policy module neither registers tasks nor patches anything (no import side effects)."""
    out = _run("import gymnasium as gym, robolearn.policies.normalizer; "
               "print(any(k.startswith('robolearn/') for k in gym.registry))", repo_root)
    assert out == "False"


def test_gym_make_in_a_fresh_interpreter(tmp_path):
    """gymnasium 1.x's plugin form ``module:env_id`` needs no robolearn import first (run outside the checkout)."""
    out = _run("import gymnasium as gym; env = gym.make('robolearn.sim.envs:robolearn/PandaLift-v0'); "
               "print(env.spec.id, env.spec.max_episode_steps)", tmp_path)
    assert out == "robolearn/PandaLift-v0 100"


def test_gymnasium_entry_point_is_declared():
    """Gymnasium versions that load the ``gymnasium.envs`` plugin group find robolearn's registration."""
    from importlib.metadata import entry_points

    (point,) = [p for p in entry_points(group="gymnasium.envs") if p.name == "robolearn"]
    assert point.value == "robolearn.sim.registry:register_all"
