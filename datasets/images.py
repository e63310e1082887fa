"""Per-frame image codecs of episode files (PNG, JPEG) and their decoding of received bytes.

A received frame is hostile input: before anything is decoded its size is bounded and its header is parsed
here, in Python, and must declare exactly the feature's ``(H, W)`` (and, for our own datasets, 8-bit RGB in
the dataset's codec). The decoder then never allocates more than one ``(H, W, 3)`` frame, whatever the
bytes claim, and a mismatch is one-line :class:`DatasetCorruptError` naming the frame.
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa

from robolearn.datasets.format import DatasetCorruptError, ImageEncoding

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
PNG_LEVEL = 3
"""zlib level of PNG frames: on rendered 84x84 frames as fast to encode as level 1 and 6% smaller; level 9
is another 9-14% smaller but 12x slower to encode."""
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""JPEG start-of-frame markers (baseline, progressive, ...); C4/C8/CC share the range but are not frames."""


def max_encoded_bytes(shape: tuple[int, ...]) -> int:
    """The most bytes one encoded ``(H, W, 3)`` frame may take: twice the raw size plus 64 KiB of headers
    (PNG/JPEG of any real frame stay well under it; a larger one is refused before decoding)."""
    return 2 * int(np.prod(shape)) + 65536


def _png_header(data: bytes) -> tuple[int, int, int, int]:
    """``(height, width, bit depth, channels)`` from a PNG's IHDR chunk."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ValueError("a PNG without its IHDR header (truncated)")
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color, 0)
    return height, width, depth, channels


def _jpeg_header(data: bytes) -> tuple[int, int, int, int]:
    """``(height, width, precision, components)`` from a JPEG's start-of-frame segment."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"a JPEG with a broken marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker in SOF_MARKERS:
            if pos + 10 > len(data):
                break
            depth, height, width, comps = struct.unpack(">BHHB", data[pos + 4:pos + 10])
            return height, width, depth, comps
        if marker == 0xDA or length < 2:  # scan data before any frame header
            raise ValueError("a JPEG without a frame header before its scan")
        pos += 2 + length
    raise ValueError("a JPEG without its frame header (truncated)")


def _sniff(data: bytes) -> str:
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SOI):
        return "jpeg"
    raise ValueError("neither PNG nor JPEG")


def decode_frame(data: bytes, shape: tuple[int, ...], codec: str | None = None) -> np.ndarray:
    """One encoded frame -> ``(H, W, 3)`` uint8 RGB, or ValueError naming what is wrong with it.

    ``shape`` is the declared feature ``(H, W, 3)``. ``codec`` (``png``/``jpeg``) is what the dataset says
    it stores: the frame must be that codec and 8-bit RGB. ``None`` (frames of a received LeRobot dataset)
    accepts PNG or JPEG of any bit depth and channel count, converted to 8-bit RGB. Either way the
    header's height and width must be the declared ones.
    """
    import cv2

    limit = max_encoded_bytes(shape)
    if len(data) > limit:
        raise ValueError(f"{len(data)} bytes, more than the {limit} any {shape} frame needs")
    found = _sniff(data)
    if codec is not None and found != codec:
        raise ValueError(f"a {found.upper()} frame in a dataset that stores {codec.upper()}")
    height, width, depth, channels = (_png_header if found == "png" else _jpeg_header)(data)
    if (height, width) != tuple(shape[:2]):
        raise ValueError(f"a {height}x{width} {found.upper()} where the feature declares {shape[0]}x{shape[1]}")
    if codec is not None and (depth, channels) != (8, 3):
        raise ValueError(f"a {depth}-bit {channels}-channel {found.upper()}; this dataset stores 8-bit RGB")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape != (shape[0], shape[1], 3) or image.dtype != np.uint8:
        raise ValueError(f"an undecodable {found.upper()} (damaged data after its header)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_frames(values: list[bytes | None], shape: tuple[int, ...], codec: str | None, what: str) -> np.ndarray:
    """Encoded frames -> ``(T, H, W, 3)`` uint8; :class:`DatasetCorruptError` names ``what`` and the step."""
    out = np.empty((len(values), *shape), np.uint8)
    for t, data in enumerate(values):
        try:
            if data is None:
                raise ValueError("a missing (null) frame")
            out[t] = decode_frame(data, shape, codec)
        except ValueError as err:
            raise DatasetCorruptError(f"{what} step {t} holds {err}") from None
    return out


def decode_column(column: pa.ChunkedArray | pa.Array, shape: tuple[int, ...], codec: str, what: str) -> np.ndarray:
    """A binary column of ``codec`` frames (one per step) -> ``(T, H, W, 3)`` uint8."""
    return decode_frames(column.to_pylist(), shape, codec, what)


def encode_frames(frames: np.ndarray, encoding: ImageEncoding) -> list[bytes]:
    """``(T, H, W, 3)`` uint8 RGB -> one PNG (zlib level :data:`PNG_LEVEL`) or JPEG (4:2:0, ``quality``) per
    frame."""
    import cv2

    if encoding.codec == "png":
        ext, params = ".png", [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL]
    elif encoding.codec == "jpeg":
        ext, params = ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(encoding.quality)]
    else:
        raise ValueError(f"encode_frames takes png or jpeg, not {encoding.codec!r}")
    out = []
    for frame in frames:
        ok, buf = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise RuntimeError(f"OpenCV could not encode a {frame.shape} frame as {encoding.codec}")
        out.append(buf.tobytes())
    return out


def stored_frames(frames: np.ndarray, encoding: ImageEncoding, what: str) -> tuple[pa.Array, np.ndarray]:
    """The column the writer stores for ``frames`` ``(T, H, W, 3)`` (one PNG/JPEG per step) and the frames
    as a reader will decode them (``frames`` itself for lossless PNG; decoded again for JPEG, so the
    episode statistics describe what training will see)."""
    encoded = encode_frames(frames, encoding)
    column = pa.array(encoded, pa.binary())
    if encoding.codec == "png":
        return column, frames
    return column, decode_frames(encoded, frames.shape[1:], encoding.codec, what)
