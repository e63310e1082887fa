"""The policy node's camera inputs: decoded, resized frames paired with the state by header stamp.

:class:`CameraInputs` keeps the last few frames of each camera a policy reads (its ``pixels/<camera>`` keys),
already decoded (:func:`robolearn.ros_nodes.images.decode`) and resized to the policy's ``(H, W)``.
:meth:`CameraInputs.pick` pairs a state stamped ``t`` with each camera's newest frame stamped within
``[t - max_age, t + max_age]``; when a camera has none (*missing*: nothing received yet; *stale*: only older
frames, or only frames from further ahead than ``max_age``) the step gets no images and the counter of that
case rises. Refused images are counted by reason; decode and resize times (ms) are kept for the timing report.
No ROS here: the node hands it messages and stamps.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robolearn.ros_nodes.convert import MessageError, stamp_to_sec
from robolearn.ros_nodes.images import decode, resize


def pixel_shapes(shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, int]]:
    """``{camera: (H, W)}`` of a policy's ``pixels/<camera>`` keys (``shapes``: key -> per-frame shape)."""
    return {k.removeprefix("pixels/"): (int(s[0]), int(s[1])) for k, s in shapes.items() if k.startswith("pixels/")}


class CameraInputs:
    """Frames of the cameras ``sizes`` (``{camera: (H, W)}``), paired with states by stamp.

    Args:
        sizes: each camera and the ``(height, width)`` the policy reads it at.
        max_age: largest distance (s) between a frame's stamp and the state's it is paired with.
        keep: frames kept per camera.
    """

    def __init__(self, sizes: Mapping[str, tuple[int, int]], max_age: float, keep: int = 4):
        if max_age <= 0:
            raise ValueError(f"max_image_age must be > 0 s, got {max_age}")
        self.sizes, self.max_age = dict(sizes), float(max_age)
        self._frames: dict[str, deque[tuple[float, np.ndarray]]] = {c: deque(maxlen=keep) for c in self.sizes}
        self.received: Counter[str] = Counter()
        """Frames accepted, per camera."""
        self.refused: Counter[str] = Counter()
        """Frames refused, by reason (encoding, dimensions, size mismatch, undecodable)."""
        self.missing = 0
        """States with no frame of some camera received yet."""
        self.stale = 0
        """States whose cameras' frames were all older (or newer) than ``max_age``."""
        self.paired = 0
        self.decode_ms: deque[float] = deque(maxlen=2000)
        self.resize_ms: deque[float] = deque(maxlen=2000)
        self.last_error = ""

    @property
    def keys(self) -> list[str]:
        """The observation keys these frames fill (``pixels/<camera>``)."""
        return [f"pixels/{c}" for c in self.sizes]

    def add(self, camera: str, msg: Any) -> bool:
        """Decode, resize and keep one image of ``camera``; False (counted by reason) when it is refused."""
        t0 = time.perf_counter()
        try:
            frame = decode(msg)
        except MessageError as err:
            self.refused[err.reason] += 1
            self.last_error = f"{camera}: {err}"
            return False
        t1 = time.perf_counter()
        frame = resize(frame, *self.sizes[camera])
        t2 = time.perf_counter()
        self.decode_ms.append(1e3 * (t1 - t0))
        self.resize_ms.append(1e3 * (t2 - t1))
        self._frames[camera].append((stamp_to_sec(msg.header.stamp), frame))
        self.received[camera] += 1
        return True

    def pick(self, stamp: float) -> dict[str, np.ndarray] | None:
        """``{pixels/<camera>: (H, W, 3) uint8}`` for a state stamped ``stamp`` (s), or None (counted as missing
        or stale) when a camera has no frame within ``max_age`` of it."""
        out = {}
        for camera, frames in self._frames.items():
            if not frames:
                self.missing += 1
                return None
            near = [(t, f) for t, f in frames if abs(t - stamp) <= self.max_age]
            if not near:
                self.stale += 1
                return None
            out[f"pixels/{camera}"] = max(near, key=lambda item: item[0])[1]
        self.paired += 1
        return out

    def newest_age(self, now: float) -> float:
        """Seconds from the oldest of the cameras' newest frames to ``now`` (inf when a camera has none)."""
        if any(not frames for frames in self._frames.values()):
            return float("inf")
        return now - min(frames[-1][0] for frames in self._frames.values())

    def summary(self) -> dict[str, Any]:
        """Counts and decode / resize percentiles (ms), for ``policy/timing``."""
        out: dict[str, Any] = {"cameras": list(self.sizes), "received": dict(self.received),
                               "refused": dict(self.refused), "missing": self.missing, "stale": self.stale,
                               "paired": self.paired}
        for name, values in (("decode", self.decode_ms), ("resize", self.resize_ms)):
            if values:
                arr = np.asarray(values)
                out[f"{name}_p50_ms"] = float(np.percentile(arr, 50))
                out[f"{name}_p99_ms"] = float(np.percentile(arr, 99))
        if self.last_error:
            out["last_refusal"] = self.last_error
        return out
