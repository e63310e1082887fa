"""Who publishes on the robot's command topics: the safety node's check that only the safety layer commands.

On a DDS graph without DDS Security (the PyPI wheels' Fast DDS is built without it: ``ros_nodes/README.md``,
*Security*) any participant in the domain may publish on the robot's command topics. :class:`PublisherWatch` lists the
publishers of those topics from the ROS graph (``get_publishers_info_by_topic``: node name, namespace and
endpoint GID of each) and reports every one that is neither the watching node itself (its name and its
participant, the first 12 bytes of the GID) nor one of the allowed nodes (by fully qualified name: the
inline-filtering policy node in monitor mode). A node name can be copied by an impostor in another process;
the node's own participant cannot, so a copy of the safety node's own name is still reported.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

UNNAMED_GRACE_S = 1.0
"""Seconds an endpoint may go without its node's name before it counts as unknown: DDS discovers a publisher
a moment before the ROS graph names its node (so the allowed policy node is not flagged as it starts)."""
GUID_PREFIX_BYTES = 12
"""Bytes of an endpoint GID that name its DDS participant (the rest name the endpoint within it)."""


def fqn(name: str, namespace: str) -> str:
    """A node's fully qualified name (``/ns/name``)."""
    return f"{namespace.rstrip('/')}/{name}"


class PublisherWatch:
    """The unknown publishers on ``topics`` as seen by ``node``.

    Args:
        node: the watching node (an rclpy ``Node``); its own publishers are never reported.
        topics: the robot's command topics (relative names resolve in the node's namespace).
        allowed: fully qualified names of other nodes allowed to publish there (``/policy``).
    """

    def __init__(self, node: Any, topics: Sequence[str], allowed: Iterable[str] = ()):
        from std_msgs.msg import Empty

        self.node, self.allowed = node, set(allowed)
        self.topics = [node.resolve_topic_name(t) for t in topics]
        self.own = node.get_fully_qualified_name()
        # A publisher on a topic nobody else can know names this node's participant (its GID prefix).
        probe = node.create_publisher(Empty, f"~/_participant_{uuid.uuid4().hex[:12]}", 1)
        infos = node.get_publishers_info_by_topic(probe.topic_name)
        self.prefix = bytes(infos[0].endpoint_gid)[:GUID_PREFIX_BYTES] if infos else b""
        node.destroy_publisher(probe)
        self._unnamed: dict[str, float] = {}
        """GID (hex) -> when an endpoint without a node name was first seen (monotonic s)."""

    def is_own(self, info: Any) -> bool:
        """Whether an endpoint is this node's own (its name and its participant)."""
        return (fqn(info.node_name, info.node_namespace) == self.own
                and bytes(info.endpoint_gid)[:GUID_PREFIX_BYTES] == self.prefix)

    def unknown(self) -> dict[str, str]:
        """Each publisher on the topics that is neither this node nor an allowed one: endpoint GID (hex) ->
        ``"<node> on <topic>"``. An endpoint whose node stays unnamed for :data:`UNNAMED_GRACE_S` (a plain DDS
        writer) is ``<unknown node>``; before that it is not reported (its node's name may be on its way)."""
        found, unnamed, now = {}, {}, time.monotonic()
        for topic in self.topics:
            for info in self.node.get_publishers_info_by_topic(topic):
                name, gid = fqn(info.node_name, info.node_namespace), bytes(info.endpoint_gid).hex()
                if self.is_own(info) or name in self.allowed:
                    continue
                if "_NODE_NAME_UNKNOWN_" in name:
                    unnamed[gid] = self._unnamed.get(gid, now)
                    if now - unnamed[gid] < UNNAMED_GRACE_S:
                        continue
                    name = "<unknown node>"
                found[gid] = f"{name} on {topic}"
        self._unnamed = unnamed
        return found
