"""Refinement of a frozen base :class:`~robolearn.core.protocols.Policy` with off-policy RL.

Every method is an environment wrapper around the base (so one learner serves all of them):

* :mod:`robolearn.refine.residual`: residual RL (ResFiT), a bounded correction added to the base action.
* :mod:`robolearn.refine.noise_steering`: DSRL, the actor picks the base's initial diffusion noise.
* :mod:`robolearn.refine.dsrl_na`: DSRL-NA, noise aliasing (action critic distilled into a noise critic).
* :mod:`robolearn.refine.loop`: the training loop behind ``robolearn refine``.
"""
