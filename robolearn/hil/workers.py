"""The two halves of a HIL run: :class:`HILActor` (env, person, policy inference, dataset) and
:class:`HILLearner` (buffers, updates, checkpoints). They meet only through plain messages: transition
batches (numpy) from actor to learner and actor weights (numpy state dicts) from learner to actor, so
:mod:`robolearn.hil.actor_learner` can run them in one process or two.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robolearn.hil.config import HILConfig
from robolearn.hil.intervention import InterventionVecEnv, SuccessLabeler
from robolearn.hil.modes import ModeSpec, TransitionBuilder, mode_spec, mode_updates, route
from robolearn.hil.sim_human import Intervener
from robolearn.hil.sources import HILSources
from robolearn.refine.methods import METHODS
from robolearn.refine.residual import ResidualVecEnv
from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from robolearn.rl.learner import OffPolicyLearner
from robolearn.rl.networks import Actor
from robolearn.rl.replay import Batch, ReplayBuffer

Weights = dict[str, np.ndarray]
"""An actor state dict as numpy arrays (picklable across processes)."""


def make_residual_env(cfg: HILConfig, sources: HILSources, num_envs: int, seed: int, classifier: bool = False
                      ) -> ResidualVecEnv:
    """``num_envs`` envs of ``sources`` under the residual wrapper (``cfg.residual``) around a fresh
    ``cfg.base``; with ``classifier`` and ``cfg.reward_classifier`` set, rewarded and ended by that success
    classifier."""
    if classifier and cfg.reward_classifier:
        from robolearn.hil.reward_wrapper import make_classifier_vec_env

        venv = make_classifier_vec_env(sources.make_env, num_envs, cfg.reward_classifier, cfg.classifier_threshold,
                                       seed=seed)
    else:
        venv = sources.make_env(num_envs, seed, None)
    return METHODS["residual"].wrap(venv, sources.load_policy(cfg.base, seed), cfg.residual, seed)


def make_env(cfg: HILConfig, sources: HILSources, intervener: Intervener | None = None,
             labeler: SuccessLabeler | None = None) -> InterventionVecEnv:
    """The training env: residual wrapper + the person (``intervener``, default the configured sim human).

    Its reward comes from ``cfg.reward_classifier`` when set (the policy-alone evaluation env keeps the env's)."""
    if intervener is None:
        if cfg.device != "sim-human":
            raise ValueError(f"device {cfg.device!r} needs an intervener built from the device (see robolearn.cli.hil)")
        intervener = sources.sim_human(cfg.num_envs)
    env = make_residual_env(cfg, sources, cfg.num_envs, cfg.seed, classifier=True)
    return InterventionVecEnv(env, intervener, labeler)


def actor_weights(actor: torch.nn.Module) -> Weights:
    return {k: v.detach().cpu().numpy().copy() for k, v in actor.state_dict().items()}


class EpisodeRecorder:
    """Buffers each env's steps and writes every finished episode to a robolearn dataset."""

    def __init__(self, writer: Any, num_envs: int, meta: Mapping[str, Any]) -> None:
        self.writer, self.meta = writer, dict(meta)
        self.steps: list[list[dict[str, Any]]] = [[] for _ in range(num_envs)]

    def add(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any], reward: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray) -> None:
        done = terminated | truncated
        for i, rows in enumerate(self.steps):
            rows.append({"obs": {k: np.asarray(v[i]) for k, v in obs.items()}, "action": info["executed"][i],
                         "reward": float(reward[i]), "success": bool(info["is_success"][i]),
                         "intervention": bool(info["intervention"][i])})
            if done[i]:
                self._commit(i, bool(terminated[i]), bool(truncated[i]))

    def _commit(self, i: int, terminated: bool, truncated: bool) -> None:
        rows, self.steps[i] = self.steps[i], []
        self.writer.begin_episode(meta=self.meta)
        self.writer.add_steps({k: np.stack([r["obs"][k] for r in rows]) for k in rows[0]["obs"]},
                              np.stack([r["action"] for r in rows]), np.array([r["reward"] for r in rows]),
                              np.array([r["success"] for r in rows]), np.array([r["intervention"] for r in rows]))
        self.writer.end_episode(success=rows[-1]["success"], terminated=terminated, truncated=truncated)


class HILActor:
    """Acts in the intervention env with a local copy of the actor network; returns built transitions.

    Its weights change only through :meth:`load_weights`, so a dead learner leaves it acting on the last
    weights it received.
    """

    def __init__(self, cfg: HILConfig, env: InterventionVecEnv, recorder: EpisodeRecorder | None = None,
                 window: int = 20) -> None:
        self.cfg, self.env, self.recorder = cfg, env, recorder
        self.spec: ModeSpec = mode_spec(cfg.mode)
        stochastic = cfg.learner.algo == "sac"
        self.net = Actor(env.obs_shapes, env.action_dim, cfg.learner.hidden, stochastic, zero_init_last=True)
        self.net.eval()
        self.version = -1
        self.builder = TransitionBuilder(self.spec, env.num_envs, cfg.n_step, cfg.learner.gamma)
        self.gen = torch.Generator().manual_seed(cfg.seed + 17)
        self.rng = np.random.default_rng(cfg.seed + 17)
        self.env_steps = self.episodes = self.successes = 0
        self.intervention_steps = self.takeovers = 0
        self.recent: deque[tuple[bool, int, int]] = deque(maxlen=window)
        """(success, intervened steps, length) of the last episodes."""
        self._ep_len = np.zeros(env.num_envs, np.int64)
        self._ep_int = np.zeros(env.num_envs, np.int64)
        self.last_outcome = ""
        self.obs: dict[str, np.ndarray] = {}

    def load_weights(self, weights: Weights, version: int) -> None:
        self.net.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})
        self.version = int(version)

    def reset(self, seed: int) -> None:
        self.obs = self.env.reset(seed=seed)
        self.builder.reset()

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool, rng: Any = None) -> np.ndarray:
        """Actor action ``(B, Da)`` in ``[-1, 1]`` (``evaluate_wrapper`` calls it like a learner's ``act``)."""
        t = {k: torch.as_tensor(np.asarray(v)) for k, v in obs.items()}
        if deterministic or not self.net.stochastic:
            a = self.net.mode(t).numpy()
            if not deterministic:  # TD3 exploration
                a = np.clip(a + self.rng.normal(0, self.cfg.learner.exploration_noise, a.shape), -1, 1)
            return a.astype(np.float32)
        return self.net.sample(t, self.gen)[0].numpy()

    def step(self) -> Batch | None:
        """One vector step; returns the transitions it completed (with ``intervened``), or None."""
        action = self.act(self.obs, deterministic=self.spec.deterministic)
        nxt, reward, term, trunc, info = self.env.step(action)
        batch = self.builder.push(self.obs, info["critic_action"], reward, term, trunc, info["final_obs"],
                                  info["intervention"], info["takeover"])
        if self.recorder is not None:
            self.recorder.add(self.obs, info, reward, term, trunc)
        self._count(info, term | trunc)
        self.obs = nxt
        return batch

    def _count(self, info: Mapping[str, Any], done: np.ndarray) -> None:
        mask = np.asarray(info["intervention"], bool)
        self.env_steps += self.env.num_envs
        self.intervention_steps += int(mask.sum())
        self.takeovers += int(np.asarray(info["takeover"]).sum())
        self._ep_len += 1
        self._ep_int += mask
        for i in np.nonzero(done)[0]:
            ok = bool(info["is_success"][i])
            self.episodes += 1
            self.successes += int(ok)
            self.recent.append((ok, int(self._ep_int[i]), int(self._ep_len[i])))
            self.last_outcome = (f"ep {self.episodes}: {'success' if ok else 'failure'}, "
                                 f"{self._ep_int[i]}/{self._ep_len[i]} steps human")
            self._ep_len[i] = self._ep_int[i] = 0

    @property
    def success_rate(self) -> float:
        """Success rate of the last ``window`` training episodes (with the person's help)."""
        return float(np.mean([r[0] for r in self.recent])) if self.recent else 0.0

    @property
    def intervention_rate(self) -> float:
        """Share of steps under human control over the last ``window`` episodes."""
        steps = sum(r[2] for r in self.recent)
        return sum(r[1] for r in self.recent) / steps if steps else 0.0

    def status(self) -> str:
        return (f"steps {self.env_steps}  episodes {self.episodes}  success {self.success_rate:.2f}  "
                f"intervention {self.intervention_rate:.2f}  takeovers {self.takeovers}  "
                f"weights v{self.version}  | {self.last_outcome}")


class HILLearner:
    """Buffers, the off-policy learner and its checkpoints. ``critic_action_fn`` as in OffPolicyLearner."""

    def __init__(self, cfg: HILConfig, obs_shapes: Mapping[str, tuple[int, ...]], action_dim: int,
                 critic_action_fn: Callable[..., torch.Tensor] | None = None) -> None:
        self.cfg, self.spec = cfg, mode_spec(cfg.mode)
        lcfg = cfg.learner
        lcfg.zero_init_actor = True
        fn = critic_action_fn or cfg.residual.critic_action_fn(action_dim)
        self.learner = OffPolicyLearner(lcfg, obs_shapes, action_dim, action_dim, fn, seed=cfg.seed,
                                        device=cfg.device_torch)
        self.online = ReplayBuffer(obs_shapes, action_dim, cfg.replay_capacity)
        self.demo = ReplayBuffer(obs_shapes, action_dim, cfg.replay_capacity)
        self.rng = np.random.default_rng(cfg.seed + 3)
        self.counters: dict[str, Any] = {"env_steps": 0, "transitions": 0, "owed": 0.0}
        self.last_stats: dict[str, float] = {}

    @property
    def updates(self) -> int:
        return self.learner.num_updates

    def add(self, batch: Batch, env_steps: int) -> None:
        """Store a built batch; ``env_steps`` is the actor's count when it was built (owes UTD updates)."""
        route(self.spec, batch, self.online, self.demo)
        self.counters["owed"] += self.cfg.updates_per_env_step * max(0, env_steps - self.counters["env_steps"])
        self.counters["env_steps"] = max(self.counters["env_steps"], int(env_steps))
        self.counters["transitions"] += len(batch["reward"])

    def train(self, max_updates: int | None = None) -> int:
        """Run the owed updates (at most ``max_updates``); returns how many ran."""
        n = int(self.counters["owed"])
        if max_updates is not None:
            n = min(n, max_updates)
        if n <= 0:
            return 0
        stats = mode_updates(self.spec, self.learner, self.online, self.demo, n, self.rng,
                             self.cfg.offline_fraction, self.cfg.critic_warmup_updates, self.cfg.min_buffer)
        self.counters["owed"] -= n  # updates owed while the buffer was still too small are dropped
        if stats:
            self.last_stats = stats
            return n
        return 0

    def weights(self) -> Weights:
        return actor_weights(self.learner.actor)

    def checkpoint(self, run_dir: str | Path) -> Path:
        state = {"learner": self.learner.state_dict(), "counters": dict(self.counters), "rng": rng_state(self.rng),
                 "torch_rng": torch.get_rng_state(), "mode": self.cfg.mode}
        return save_checkpoint(run_dir, self.updates, state, {"online": self.online, "demo": self.demo})

    def restore(self, run_dir: str | Path) -> bool:
        """Load the latest checkpoint of ``run_dir`` if there is one; True when it did."""
        path = latest_checkpoint(run_dir)
        if path is None:
            return False
        state = load_checkpoint(path, {"online": self.online, "demo": self.demo})
        if state.get("mode") != self.cfg.mode:
            raise ValueError(f"{path} was written by mode {state.get('mode')!r}, this run is {self.cfg.mode!r}")
        self.learner.load_state_dict(state["learner"])
        self.counters = dict(state["counters"])
        set_rng_state(self.rng, state["rng"])
        torch.set_rng_state(state["torch_rng"])
        return True
