"""A graph owns its ROS domain: find who is on a ``ROS_DOMAIN_ID``, take a free one, or refuse a busy one.

Two node graphs in one domain on one machine talk to each other: the second one's policy, e-stop or reset
reaches the first one's robot. :func:`domain_nodes` probes a domain with a short-lived rclpy context (discovery
limited to this host, as the graphs' own) and lists the ROS nodes it discovers within ``wait`` seconds;
:func:`claim_domain` gives the launcher a domain no one else uses: the requested one if it is empty (else
:class:`DomainBusyError`, one line naming the nodes there), or with none requested the first empty one from a
per-process starting point. A probe sees ROS nodes, not bare DDS participants; and the nodes of a graph killed
with SIGKILL stay listed until their DDS lease expires (Fast DDS: 20 s).
"""

from __future__ import annotations

import os
import time

from robolearn.core.config import ConfigError
from robolearn.ros_nodes.rosenv import require_rclpy, use_ros_env

PROBE_WAIT_S = 2.0
"""Seconds a probe listens for the nodes of a domain (loopback discovery of a running graph takes 0.1-0.2 s on
an idle machine, more on a loaded one)."""
AUTO_DOMAINS = range(10, 100)
"""Domains :func:`claim_domain` picks from (0, the default of every other ROS 2 user, and 100-101 stay out)."""
MAX_TRIES = 12
"""Busy domains :func:`claim_domain` skips before it gives up."""


class DomainBusyError(ConfigError):
    """The requested ``ROS_DOMAIN_ID`` already has ROS nodes on it (the message names them)."""


def domain_nodes(domain_id: int, localhost_only: bool = True, wait: float = PROBE_WAIT_S) -> list[str]:
    """Fully qualified names of the ROS nodes discovered on ``domain_id`` within ``wait`` s (this probe excluded;
    a name twice when two nodes share it), sorted. Sets this process's middleware variables
    (:func:`~robolearn.ros_nodes.rosenv.use_ros_env`)."""
    rclpy = require_rclpy()
    from rclpy.context import Context

    use_ros_env(domain_id, localhost_only)
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    name = f"domain_probe_{os.getpid()}"
    node = rclpy.create_node(name, context=context)
    try:
        time.sleep(wait)  # discovery runs in the middleware's threads
        found = [f"{ns.rstrip('/')}/{n}" for n, ns in node.get_node_names_and_namespaces() if n != name]
    finally:
        node.destroy_node()
        context.try_shutdown()
    return sorted(found)


def claim_domain(domain_id: int | None, localhost_only: bool = True, wait: float = PROBE_WAIT_S) -> int:
    """A domain for a new graph: ``domain_id`` if no ROS node is on it (else :class:`DomainBusyError`), or with
    None the first empty one of :data:`AUTO_DOMAINS`, starting at a point that differs between processes."""
    if domain_id is not None:
        nodes = domain_nodes(domain_id, localhost_only, wait)
        if nodes:
            raise DomainBusyError(f"ROS_DOMAIN_ID {domain_id} is in use by {len(nodes)} node(s): "
                                  f"{', '.join(nodes[:8])}{' ...' if len(nodes) > 8 else ''}; stop them, pick "
                                  "another domain_id, or leave it unset (null) to take a free one")
        return domain_id
    start = (os.getpid() * 7919 + time.monotonic_ns() // 1000) % len(AUTO_DOMAINS)
    busy = []
    for i in range(MAX_TRIES):
        candidate = AUTO_DOMAINS[(start + 5 * i) % len(AUTO_DOMAINS)]
        if not domain_nodes(candidate, localhost_only, wait):
            return candidate
        busy.append(candidate)
    raise DomainBusyError(f"no free ROS_DOMAIN_ID: domains {busy} all have nodes on them")
