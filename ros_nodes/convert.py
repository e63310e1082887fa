"""Conversions between ROS 2 messages and robolearn observations / actions.

Topics and messages used throughout :mod:`robolearn.ros_nodes`:

* ``observation`` (``std_msgs/Float64MultiArray``): the full observation of one control step, every
  1-D feature flattened in order; ``layout.dim[i].label`` is the feature name and ``.size`` its length.
  Three bookkeeping entries lead: ``_stamp`` (publish time, s since the epoch, ROS clock),
  ``_episode`` (episode index) and ``_step`` (step in the episode). On a real robot a small bridge
  composes this topic from the drivers and the perception stack; the MuJoCo twin publishes it directly
  (it is the "privileged state" topic: object poses come from the simulator).
* ``joint_states`` (``sensor_msgs/JointState``): measured joint positions (rad) / velocities (rad/s).
* ``action`` (``std_msgs/Float64MultiArray``): the policy's action in env units (labels = action names),
  led by the ``_stamp`` / ``_episode`` / ``_step`` of the observation it answers when the publisher knows
  it (the policy node does; a recorder pairs each action with that observation, not with whichever
  observation it happened to receive last).
* Robot command topics: see :mod:`robolearn.ros_nodes.embodiments`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

META_KEYS = ("_stamp", "_episode", "_step")
"""Bookkeeping entries leading every ``observation`` message."""


class MessageError(ValueError):
    """A message that does not fit what the receiver expects (sizes, labels, NaN).

    Args:
        message: what is wrong, with the offending values.
        reason: a short fixed reason the receiver counts refusals under (default ``malformed``).
    """

    def __init__(self, message: str, reason: str = "malformed"):
        super().__init__(message)
        self.reason = reason


def stamp_to_sec(stamp: Any) -> float:
    """A ``builtin_interfaces/Time`` as seconds (float)."""
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def clock_sec(node: Any) -> float:
    """``node``'s ROS clock now, in seconds: the time base of the header stamps the nodes write."""
    return node.get_clock().now().nanoseconds * 1e-9


def sec_to_stamp(t: float) -> Any:
    """Seconds -> ``builtin_interfaces/Time``."""
    from builtin_interfaces.msg import Time

    sec = int(np.floor(t))
    return Time(sec=sec, nanosec=min(int(round((t - sec) * 1e9)), 999_999_999))


def labelled_array(values: Mapping[str, np.ndarray | Sequence[float] | float]) -> Any:
    """``{name: 1-D values}`` -> ``std_msgs/Float64MultiArray`` with one labelled dim per name."""
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension

    msg = Float64MultiArray()
    parts = []
    for name, value in values.items():
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
        parts.append(arr)
        msg.layout.dim.append(MultiArrayDimension(label=name, size=arr.size, stride=arr.size))
    msg.data = np.concatenate(parts).tolist() if parts else []
    return msg


def unpack_labelled(msg: Any) -> dict[str, np.ndarray]:
    """``std_msgs/Float64MultiArray`` written by :func:`labelled_array` -> ``{name: float64 (n,)}``."""
    data = np.asarray(msg.data, dtype=np.float64)
    total = sum(int(d.size) for d in msg.layout.dim)
    if total != data.size:
        raise MessageError(f"layout sizes add up to {total}, message holds {data.size} values")
    out, start = {}, 0
    for d in msg.layout.dim:
        out[d.label] = data[start:start + d.size]
        start += d.size
    return out


def observation_msg(obs: Mapping[str, np.ndarray], stamp: float, episode: int, step: int) -> Any:
    """One observation (1-D features; camera frames excluded) as an ``observation`` message."""
    flat = {"_stamp": [stamp], "_episode": [float(episode)], "_step": [float(step)]}
    flat.update({k: v for k, v in obs.items() if not k.startswith("pixels/")})
    return labelled_array(flat)


def parse_observation(msg: Any, keys: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """An ``observation`` message -> (float32 features, ``{"stamp", "episode", "step"}``).

    Raises :class:`MessageError` when a key in ``keys`` is missing or the message has no bookkeeping.
    """
    values = unpack_labelled(msg)
    missing = [k for k in (*META_KEYS, *(keys or ())) if k not in values]
    if missing:
        raise MessageError(f"observation lacks {missing}; it has {sorted(values)}")
    meta = {k[1:]: float(values.pop(k)[0]) for k in META_KEYS}
    obs = {k: v.astype(np.float32) for k, v in values.items() if keys is None or k in keys}
    return obs, meta


def joint_state_msg(names: Sequence[str], position: np.ndarray, velocity: np.ndarray, stamp: float) -> Any:
    """``sensor_msgs/JointState`` of positions (rad) and velocities (rad/s)."""
    from sensor_msgs.msg import JointState

    msg = JointState()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.name = list(names)
    msg.position = np.asarray(position, np.float64).tolist()
    msg.velocity = np.asarray(velocity, np.float64).tolist()
    return msg


def image_msg(rgb: np.ndarray, stamp: float, frame_id: str) -> Any:
    """``sensor_msgs/Image`` (``rgb8``) of an ``(H, W, 3)`` uint8 frame."""
    from sensor_msgs.msg import Image

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MessageError(f"expected an (H, W, 3) uint8 frame, got {rgb.shape} {rgb.dtype}")
    msg = Image()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding, msg.is_bigendian, msg.step = "rgb8", 0, int(rgb.shape[1]) * 3
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


def action_msg(action: np.ndarray, names: Sequence[str], meta: Mapping[str, float] | None = None) -> Any:
    """An action ``(Da,)`` as an ``action`` message labelled with ``names``; ``meta`` (``stamp``, ``episode``,
    ``step`` of the observation it answers, as :func:`parse_observation` returns them) leads it when given."""
    action = np.asarray(action, np.float64).reshape(-1)
    if len(names) != action.size:
        raise MessageError(f"{len(names)} action names for an action of size {action.size}")
    tags = {f"_{k}": [float(v)] for k, v in (meta or {}).items()}
    return labelled_array({**tags, **{n: [a] for n, a in zip(names, action, strict=True)}})


def parse_tagged_action(msg: Any) -> tuple[np.ndarray, dict[str, float]]:
    """An ``action`` message -> (float64 action ``(Da,)``, ``{"episode", "step", ...}`` of the observation it
    answers: empty when the publisher did not tag it). Raises :class:`MessageError` on NaN or a bad layout."""
    try:  # labelled (action_msg); anything else (no layout, a matrix layout) is untagged plain data
        values = unpack_labelled(msg) if msg.layout.dim else {"": np.asarray(msg.data, np.float64)}
    except MessageError:
        values = {"": np.asarray(msg.data, np.float64)}
    meta = {k[1:]: float(v[0]) for k, v in values.items() if k.startswith("_") and v.size == 1}
    action = [v for k, v in values.items() if not k.startswith("_")]
    data = np.concatenate(action) if action else np.zeros(0)
    if not np.isfinite(data).all():
        raise MessageError(f"action contains NaN or inf: {data.tolist()}")
    return data, meta


def parse_action(msg: Any, size: int) -> np.ndarray:
    """An ``action`` message (tags dropped) -> float32 ``(size,)``; raises :class:`MessageError` on size or NaN."""
    data, _ = parse_tagged_action(msg)
    if data.size != size:
        raise MessageError(f"action of size {data.size}, expected {size}")
    return data.astype(np.float32)
