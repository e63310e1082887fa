"""Human-in-the-loop refinement: a person (or a simulated one) takes over when the robot goes wrong.

* :mod:`robolearn.hil.sim_human`: interveners: :class:`SimHuman` (a scripted expert with a trigger rule)
  and :class:`TeleopIntervener` (keyboard, gamepad, SpaceMouse).
* :mod:`robolearn.hil.intervention`: :class:`InterventionVecEnv`, the wrapper that swaps the person's
  action in before the transition is stored.
* :mod:`robolearn.hil.modes`: HIL-SERL, RLIF and HG-DAgger: rewards, buffers, updates (:data:`MODES`, the
  second dict beside refinement's ``METHODS``).
* :mod:`robolearn.hil.reward_classifier` / :mod:`robolearn.hil.reward_wrapper`: a success classifier learned
  from labelled dataset frames, and the env wrapper whose reward and success terminations come from it.
* :mod:`robolearn.hil.run`: :func:`run_hil`, HIL's parts plugged into refinement's off-policy loop
  (:mod:`robolearn.refine.runner`), its learner side in this process or its own;
  :mod:`robolearn.hil.recorder` writes the episodes.
* :mod:`robolearn.hil.sources`: what a run is given from outside (envs, policies, the simulated person);
  :func:`robolearn.wiring.hil_sources` builds the usual ones, so HIL imports neither sim nor the policy loader.

The residual is refinement's (:class:`robolearn.refine.methods.ResidualParams`, its wrapper, its saved
policy); the modes are :data:`robolearn.hil.modes.MODES`.
"""
