"""DSRL-NA (noise aliasing) as a refinement method: replay stores executed chunks, an action critic is
distilled into a noise critic (:mod:`robolearn.refine.dsrl_na`); demonstrations are cut into executed-chunk
transitions (:mod:`robolearn.refine.chunk_data`)."""

from __future__ import annotations

import gymnasium as gym

from robolearn.core.protocols import Policy
from robolearn.refine.methods.base import OfflineData
from robolearn.refine.methods.dsrl import DSRLMethod, NoiseParams
from robolearn.refine.noise_steering import NoiseSteeringVecEnv, probe_chunk_dim
from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.rl.replay import ReplayBuffer


class DSRLNAMethod(DSRLMethod):
    def wrap(self, venv: gym.vector.VectorEnv, base: Policy | None, params: NoiseParams, seed: int
             ) -> NoiseSteeringVecEnv:
        """A wrapper that stores executed chunks ``(Ta * Da,)``; one zero-noise chunk of a probing reset
        (seeded ``seed``) measures their size."""
        assert base is not None
        return NoiseSteeringVecEnv(venv, base, params.bound, chunk_dim=probe_chunk_dim(venv, base, seed))

    def learner(self, lcfg: LearnerConfig, env: NoiseSteeringVecEnv, seed: int, device: str) -> OffPolicyLearner:
        from robolearn.refine.dsrl_na import ChunkDecoder, NoiseAliasingLearner

        decoder = ChunkDecoder(env.base, env.scaler, env.bound)
        return NoiseAliasingLearner(lcfg, env.obs_shapes, env.action_dim, env.critic_action_dim, decoder,
                                    seed=seed, device=device)

    def fill_offline(self, env: NoiseSteeringVecEnv, buffer: ReplayBuffer, data: OfflineData) -> None:
        """Single-step demonstrations cut into executed-chunk transitions."""
        from robolearn.refine.chunk_data import fill_chunk_offline

        fill_chunk_offline(env, buffer, data)
