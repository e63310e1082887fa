"""Record ROS 2 topics into an MCAP file (the ``ros2`` profile ``ros2 bag record -s mcap`` writes).

Messages are stored as they travel, CDR-serialized (subscriptions with ``raw=True``: no decode and
re-encode), with a ``ros2msg`` schema per message type: the type's ``.msg`` text followed by every
message type it uses, each after a ``MSG: pkg/Type`` separator line, which is what the ``mcap``
readers (``mcap-ros2-support``, ``rosbags``, Foxglove) decode with. The ``.msg`` files come from the
ROS installation: ``share/<pkg>/msg/`` under each ``AMENT_PREFIX_PATH`` entry, or under the Python
prefix for the PyPI wheels of ``robolearn[ros]``.

An MCAP file gets its index and summary when it is closed; one cut short by a crash still holds every
chunk written before it, which a streaming reader (``mcap.reader.make_reader`` on a non-seekable
stream) recovers.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import IO, Any

BUILTIN_TYPES = frozenset({
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
    "int64", "uint64", "string", "wstring",
})
"""Primitive field types of the ROS 2 message language (no schema of their own)."""

SEPARATOR = "=" * 80
_FIELD = re.compile(r"^\s*([A-Za-z_][\w/]*)(?:<=\d+)?(\[[^\]]*\])?\s+([A-Za-z_]\w*)")


def share_dirs() -> list[Path]:
    """Where ``<pkg>/msg/<Type>.msg`` files may live: each ``AMENT_PREFIX_PATH`` entry's ``share``, then
    this interpreter's prefix (the PyPI ROS 2 wheels install there)."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes += [sys.prefix, sys.base_prefix]
    return [Path(p) / "share" for p in dict.fromkeys(prefixes)]


def msg_file(datatype: str) -> Path:
    """The ``.msg`` file of ``pkg/msg/Type`` (or ``pkg/Type``); FileNotFoundError names where it looked."""
    pkg, name = _split(datatype)
    candidates = [d / pkg / "msg" / f"{name}.msg" for d in share_dirs()]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"no message definition for {datatype}; looked in {[str(c) for c in candidates]}")


def msgdef(datatype: str) -> str:
    """The full ``ros2msg`` schema text of ``datatype``: its own definition, then each dependency once."""
    pkg, name = _split(datatype)
    parts = [msg_file(datatype).read_text()]
    seen = {f"{pkg}/{name}"}
    queue = _dependencies(parts[0], pkg)
    while queue:
        dep = queue.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        text = msg_file(dep).read_text()
        parts.append(f"{SEPARATOR}\nMSG: {dep}\n{text}")
        queue += _dependencies(text, dep.split("/")[0])
    return "\n".join(p.rstrip("\n") for p in parts) + "\n"


def _split(datatype: str) -> tuple[str, str]:
    parts = datatype.split("/")
    if len(parts) == 3 and parts[1] == "msg":
        return parts[0], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ValueError(f"message type must be 'pkg/msg/Type' or 'pkg/Type', got {datatype!r}")


def _dependencies(text: str, pkg: str) -> list[str]:
    """Non-primitive field types of a ``.msg`` text as ``pkg/Type`` (constants and comments skipped)."""
    deps = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        m = _FIELD.match(line)
        if not m or line[m.end():].lstrip().startswith("="):  # ``TYPE NAME=value`` is a constant
            continue
        ftype = m.group(1)
        if ftype in BUILTIN_TYPES:
            continue
        if ftype == "Header":
            ftype = "std_msgs/Header"
        deps.append(ftype if "/" in ftype else f"{pkg}/{ftype}")
    return deps


class McapLog:
    """An open MCAP file taking serialized ROS 2 messages.

    Args:
        path: the ``.mcap`` file to create (its folder is created; an existing file is an error, so a
            recording is never overwritten).
    """

    def __init__(self, path: str | Path):
        from mcap.writer import Writer

        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; choose a new MCAP file name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = open(self.path, "wb")  # noqa: SIM115  (closed in close())
        self._writer = Writer(self._file)
        self._writer.start(profile="ros2", library="robolearn")
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._seq: dict[str, int] = {}
        self.messages = 0

    def add_topic(self, topic: str, datatype: str) -> None:
        """Declare ``topic`` with message type ``pkg/msg/Type`` (once per topic)."""
        if topic in self._channels:
            return
        pkg, name = _split(datatype)
        key = f"{pkg}/msg/{name}"
        if key not in self._schemas:
            self._schemas[key] = self._writer.register_schema(key, "ros2msg", msgdef(key).encode())
        self._channels[topic] = self._writer.register_channel(topic, "cdr", self._schemas[key])
        self._seq[topic] = 0

    def write(self, topic: str, data: bytes, stamp_ns: int) -> None:
        """Append one CDR-serialized message of a declared topic, logged at ``stamp_ns`` (ns)."""
        self._writer.add_message(self._channels[topic], log_time=stamp_ns, data=bytes(data),
                                 publish_time=stamp_ns, sequence=self._seq[topic])
        self._seq[topic] += 1
        self.messages += 1

    def close(self) -> None:
        """Write the index and summary, and close the file."""
        if self._file.closed:
            return
        self._writer.finish()
        self._file.close()


def message_class(datatype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Type``."""
    import importlib

    pkg, name = _split(datatype)
    return getattr(importlib.import_module(f"{pkg}.msg"), name)
