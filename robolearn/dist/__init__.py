"""Scale-out over Ray (``pip install robolearn[dist]``): work that outgrows one machine, as Ray tasks.

* :mod:`robolearn.dist.cluster`: connecting to a cluster (``--ray auto`` or ``--ray ADDRESS``) and mapping a
  function over jobs as Ray tasks, one CPU and one torch thread each (the benches' ``--ray``);
* :mod:`robolearn.dist.evaluate`: :func:`~robolearn.dist.evaluate.evaluate_ray`, evaluation episodes split by
  seed over Ray tasks that each rebuild the policy from its spec (``robolearn eval --ray``);
* :mod:`robolearn.dist.actors`: :class:`~robolearn.dist.actors.RayCollector`, Ray actors that step envs for
  the off-policy loop of refinement and HIL (``runner=ray``) while the learner stays in the command's process.

ray is imported only inside the functions that need it: without it, importing these modules works and a
Ray option fails with one line naming the extra.
"""
