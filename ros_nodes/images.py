"""Camera frames to and from ROS image messages, trusting no sender.

:func:`decode` turns a ``sensor_msgs/Image`` (``rgb8``, ``bgr8``) or a ``sensor_msgs/CompressedImage``
(``jpeg``, ``png``; image_transport's ``"<enc>; jpeg compressed <enc>"`` form too) into an ``(H, W, 3)`` uint8
RGB array, and refuses anything else with a :class:`~robolearn.ros_nodes.convert.MessageError` whose
``reason`` is one of :data:`REASONS`: a hostile or broken camera costs a counted refusal, never the node.
A compressed image's size is read from its header before it is decompressed, so a small file that declares a
huge image is refused without allocating it. :func:`compressed_image_msg` encodes a frame (the twin uses it).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from robolearn.ros_nodes.convert import MessageError, sec_to_stamp

MAX_SIDE = 4096
"""Largest accepted image width or height (pixels)."""
MAX_PIXELS = 4096 * 3072
"""Largest accepted width x height."""
RAW_ENCODINGS = ("rgb8", "bgr8")
COMPRESSED_FORMATS = ("jpeg", "png")
REASONS = ("encoding", "dimensions", "size mismatch", "undecodable")
"""Why an image is refused (each counted apart)."""


def _check_size(width: int, height: int) -> None:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE and width * height <= MAX_PIXELS):
        raise MessageError(f"image of {width}x{height} pixels is outside 1..{MAX_SIDE} per side "
                           f"({MAX_PIXELS} pixels in all); send a camera image of a sane size", "dimensions")


def decode_raw(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/Image`` (``rgb8`` / ``bgr8``, rows of ``step`` bytes) -> ``(H, W, 3)`` uint8 RGB (a copy)."""
    if msg.encoding not in RAW_ENCODINGS:
        raise MessageError(f"image encoding {msg.encoding!r} is not one of {list(RAW_ENCODINGS)}; publish rgb8 or "
                           "bgr8 (or a jpeg/png CompressedImage on <topic>/compressed)", "encoding")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    _check_size(w, h)
    data = msg.data
    size = len(data)
    if step < 3 * w or size != step * h:
        raise MessageError(f"image data of {size} bytes does not fit {h} rows of step {step} for width {w} "
                           f"(need step >= {3 * w} and data = step * height)", "size mismatch")
    buf = _as_bytes(data)
    frame = buf.reshape(h, step)[:, : 3 * w].reshape(h, w, 3)
    return np.ascontiguousarray(frame[..., ::-1] if msg.encoding == "bgr8" else frame)


def _as_bytes(data: Any) -> np.ndarray:
    """A message's ``uint8[]`` field (``array.array``, bytes, or a list) as a flat uint8 array (no copy when it can)."""
    try:
        return np.frombuffer(data, np.uint8)
    except TypeError:
        return np.asarray(data, np.uint8).reshape(-1)


def compressed_kind(fmt: str) -> str:
    """``jpeg`` or ``png`` from a CompressedImage ``format`` (``"jpeg"``, ``"png"``, ``"rgb8; jpeg compressed
    bgr8"``...); refuses other formats."""
    text = fmt.lower()
    for kind, names in (("jpeg", ("jpeg", "jpg")), ("png", ("png",))):
        if any(n in text for n in names):
            return kind
    raise MessageError(f"compressed image format {fmt!r} is neither jpeg nor png; publish jpeg or png",
                       "encoding")


def decode_compressed(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (jpeg / png) -> ``(H, W, 3)`` uint8 RGB; its header is checked first."""
    import cv2
    from PIL import Image as PILImage

    kind = compressed_kind(str(msg.format))
    data = _as_bytes(msg.data).tobytes()
    try:
        with PILImage.open(io.BytesIO(data)) as probe:  # reads the header only
            width, height = probe.size
            found = (probe.format or "").lower()
    except PILImage.DecompressionBombError:
        raise MessageError(f"{kind} image of {len(data)} bytes declares a decompression bomb's size; send a camera "
                           "image of a sane size", "dimensions") from None
    except Exception as err:  # noqa: BLE001  (PIL raises several kinds for a broken header)
        raise MessageError(f"{kind} image of {len(data)} bytes has no readable header ({type(err).__name__})",
                           "undecodable") from None
    if found != kind:
        raise MessageError(f"compressed image says {kind} but holds {found or 'something else'}", "encoding")
    _check_size(width, height)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.shape[:2] != (height, width):
        raise MessageError(f"{kind} image of {len(data)} bytes could not be decoded", "undecodable")
    return np.ascontiguousarray(bgr[..., ::-1])


def decode(msg: Any) -> np.ndarray:
    """Either image message -> ``(H, W, 3)`` uint8 RGB; :class:`MessageError` (with a reason) when refused."""
    if hasattr(msg, "encoding"):
        return decode_raw(msg)
    if hasattr(msg, "format"):
        return decode_compressed(msg)
    raise MessageError(f"not an image message: {type(msg).__name__}", "encoding")


def resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """``frame`` ``(h, w, 3)`` uint8 at ``(height, width, 3)``: area averaging down, bilinear up; as is if equal."""
    if frame.shape[:2] == (height, width):
        return frame
    import cv2

    shrink = frame.shape[0] > height or frame.shape[1] > width
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def compressed_image_msg(rgb: np.ndarray, stamp: float, frame_id: str, kind: str = "jpeg",
                         quality: int = 90) -> Any:
    """``sensor_msgs/CompressedImage`` (``jpeg`` at ``quality``, or lossless ``png``) of an ``(H, W, 3)`` uint8
    RGB frame."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    if kind not in COMPRESSED_FORMATS:
        raise ValueError(f"image format must be one of {list(COMPRESSED_FORMATS)}, got {kind!r}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MessageError(f"expected an (H, W, 3) uint8 frame, got {rgb.shape} {rgb.dtype}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if kind == "jpeg" else []
    ok, buf = cv2.imencode(f".{'jpg' if kind == 'jpeg' else 'png'}", np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:
        raise MessageError(f"could not encode a {rgb.shape} frame as {kind}")
    msg = CompressedImage()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.format = kind
    msg.data = buf.tobytes()
    return msg
