"""Refinement of a frozen base :class:`~robolearn.core.protocols.Policy` with off-policy RL.

Every method is an environment wrapper around the base (so one learner serves all of them), and a plug-in
listed in :data:`robolearn.refine.methods.METHODS` (one module each under :mod:`robolearn.refine.methods`):

* ``residual``: residual RL (ResFiT), a bounded correction added to the base action
  (:mod:`robolearn.refine.residual`);
* ``dsrl``: DSRL, the actor picks the base's initial diffusion noise (:mod:`robolearn.refine.noise_steering`);
* ``dsrl-na``: DSRL-NA, noise aliasing (action critic distilled into a noise critic,
  :mod:`robolearn.refine.dsrl_na`);
* ``rlpd``: SAC from scratch, no base (:mod:`robolearn.refine.direct`).

:mod:`robolearn.refine.runner` is the off-policy loop (collect, n-step transitions, replay, owed updates,
evaluation, checkpoints) that refinement (:mod:`robolearn.refine.loop`, behind ``robolearn refine``) and HIL
(:mod:`robolearn.hil.run`) plug their parts into; its steps come from a collector
(:mod:`robolearn.refine.collectors`: its own env, or Ray actors' envs). Refinement imports neither the
simulator nor the policy loader: the caller passes envs and policies as factories
(:class:`robolearn.refine.sources.RefineSources`; :mod:`robolearn.wiring` builds the usual ones).
"""
