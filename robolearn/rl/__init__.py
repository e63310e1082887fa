"""Off-policy RL core shared by every refinement method.

* :mod:`robolearn.rl.networks`: LayerNorm MLPs, the observation encoder (state keys + DrQ-ready pixels),
  SAC / TD3 actors and a vectorised critic ensemble (optionally HL-Gauss).
* :mod:`robolearn.rl.replay`: replay buffers, the per-env n-step accumulator and RLPD 50/50 sampling.
* :mod:`robolearn.rl.learner`: :class:`OffPolicyLearner` with SAC and TD3 update rules, REDQ targets.
* :mod:`robolearn.rl.optim`: fused Adam, multi-tensor gradient clipping and target-network updates.
* :mod:`robolearn.rl.checkpoint`: atomic checkpoints of everything needed to resume.
* :mod:`robolearn.rl.devices`: a config's ``device`` setting (``auto``, ``cpu``, ``cuda[:N]``, ``mps``) as a
  ``torch.device`` (:func:`~robolearn.rl.devices.resolve_device`), for every layer above ``rl``.
"""
