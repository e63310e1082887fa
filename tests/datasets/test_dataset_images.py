"""Compressed frame storage: PNG and JPEG round trips, the encoding recorded in info.json, and received
frames that are the wrong size, truncated, bombs or another codec."""

from __future__ import annotations

import json
import re
import shutil
import struct
import zlib

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dataset_helpers import episode_arrays, make_info, replace_file, smooth_image, write_dataset

from robolearn.datasets.format import INFO_PATH, DatasetCorruptError, DatasetError, ImageEncoding
from robolearn.datasets.images import max_encoded_bytes
from robolearn.datasets.merge import merge_datasets
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.repair import repair, verify
from robolearn.datasets.sampler import WindowDataset
from robolearn.datasets.writer import EpisodeWriter

SHAPE = (12, 16, 3)  # make_info's camera


@pytest.mark.parametrize("images", ["raw", "png", "jpeg:90"])
def test_round_trip_per_encoding(tmp_path, images):
    root = tmp_path / "ds"
    arrays = write_dataset(root, [5, 9], image=True, images=images)
    ds = EpisodeDataset(root)
    stored = json.loads((root / INFO_PATH).read_text())
    assert ds.info.images == ImageEncoding.parse(images) and stored["images"]["codec"] == images.split(":")[0]
    assert stored["version"] == (1 if images == "raw" else 2)  # raw datasets stay readable by older readers
    decoded = []
    for i, want in enumerate(arrays):
        ep = ds.episode(i)
        np.testing.assert_array_equal(ep.obs["joint_pos"], want["joint_pos"])
        err = np.abs(ep.obs["pixels/front"].astype(int) - want["pixels/front"])
        if images.startswith("jpeg"):
            assert err.mean() < 2.0 and err.max() < 40, (err.mean(), err.max())
        else:
            assert err.max() == 0  # lossless
        decoded.append(ep.obs["pixels/front"])
    mean = np.concatenate(decoded).reshape(-1, 3).mean(0) / 255.0
    np.testing.assert_allclose(ds.stats()["pixels/front"]["mean"], mean, atol=1e-9)  # stats of stored frames
    assert verify(root).findings == []
    batch = WindowDataset(root, obs_horizon=2, action_horizon=4)[3]
    assert batch["obs"]["pixels/front"].shape == (2, *SHAPE)


def test_appending_keeps_the_encoding_and_refuses_another(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [3], image=True, images="png")
    write_dataset(root, [4], image=True, start=1)  # no images option: the dataset's own
    ds = EpisodeDataset(root)
    assert ds.info.images.codec == "png"
    np.testing.assert_array_equal(ds.episode(1).obs["pixels/front"], episode_arrays(1, 4, True)["pixels/front"])
    with pytest.raises(DatasetError, match="stores images as png; leave images unset to append"):
        EpisodeWriter(root, make_info(True), images="jpeg")
    write_dataset(tmp_path / "raw", [2], image=True)
    with pytest.raises(DatasetError, match=r"images stored as raw\) with .* \(png\)"):
        merge_datasets([root, tmp_path / "raw"], tmp_path / "merged")
    shutil.copytree(root, tmp_path / "again")
    assert merge_datasets([root, tmp_path / "again"], tmp_path / "merged") == 4
    assert EpisodeDataset(tmp_path / "merged").info.images.codec == "png"


@pytest.mark.parametrize(("text", "why"), [("webp", "unknown: use one of raw, png, jpeg"),
                                           ("png:5", "only jpeg takes a quality"),
                                           ("jpeg:0", "out of range: use 1..100")])
def test_a_bad_encoding_is_named(tmp_path, text, why):
    with pytest.raises(DatasetError, match=why):
        write_dataset(tmp_path / "ds", [2], image=True, images=text)
    assert not (tmp_path / "ds").exists()


def test_repair_rebuilds_the_encoding_and_recovers_a_killed_png_writer(tmp_path):
    root = tmp_path / "ds"
    arrays = write_dataset(root, [4, 5], image=True, images="jpeg:80")
    (root / INFO_PATH).unlink()
    (root / "data/episode_000009.parquet.partial").write_bytes(b"PAR1 torn")
    repair(root)
    ds = EpisodeDataset(root)
    assert ds.info.images == ImageEncoding("jpeg", 80) and not list(root.glob("data/*.partial"))
    assert np.abs(ds.episode(1).obs["pixels/front"].astype(int) - arrays[1]["pixels/front"]).mean() < 2.0


# ----------------------------------------------------------------------------- hostile frames
def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def _png_bomb(height: int, width: int) -> bytes:
    """A valid PNG declaring ``height x width`` RGB whose zlib stream inflates to all of it (~1000:1)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = zlib.compress(b"\0" * ((width * 3 + 1) * height), 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


HOSTILE = {
    "wrong size": (lambda: _png(smooth_image(0, 10, 16)), "a 10x16 PNG where the feature declares 12x16"),
    "truncated body": (lambda: _png(smooth_image(0))[:45], "an undecodable PNG"),
    "truncated header": (lambda: _png(smooth_image(0))[:20], "a PNG without its IHDR header"),
    "bomb": (lambda: _png_bomb(4000, 4000), "a 4000x4000 PNG where the feature declares 12x16"),
    "oversized": (lambda: bytes(_png(smooth_image(0))) + bytes(max_encoded_bytes(SHAPE)),
                  f"{len(_png(smooth_image(0))) + max_encoded_bytes(SHAPE)} bytes, more than the "
                  f"{max_encoded_bytes(SHAPE)} any (12, 16, 3) frame needs"),
    "other codec": (lambda: cv2.imencode(".jpg", smooth_image(0))[1].tobytes(), "a JPEG frame in a dataset "
                    "that stores PNG"),
    "16-bit": (lambda: _png(smooth_image(0).astype(np.uint16) * 256), "a 16-bit 3-channel PNG"),
    "garbage": (lambda: b"GIF89a not a frame", "neither PNG nor JPEG"),
    "null": (lambda: None, "a missing"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_frame_is_named_and_repair_quarantines_its_episode(tmp_path, case):
    root = tmp_path / "ds"
    arrays = write_dataset(root, [4, 5], image=True, images="png")
    make, why = HOSTILE[case]
    table = pq.read_table(root / "data/episode_000001.parquet")
    frames = table["obs.pixels/front"].to_pylist()
    frames[2] = make()
    i = table.schema.get_field_index("obs.pixels/front")
    replace_file(root, 1, table.set_column(i, "obs.pixels/front", pa.array(frames, pa.binary())))
    report = verify(root)
    assert not report.ok and report.bad_episodes == [1], report.findings
    assert f"observation 'pixels/front' step 2 holds {why}" in report.findings[0].problem
    with pytest.raises(DatasetCorruptError, match=f"episode 1 .*step 2 holds {re.escape(why)}.*repair"):
        WindowDataset(root)
    repair(root)
    ds = EpisodeDataset(root)
    assert len(ds) == 1 and (root / "quarantine/episode_000001.parquet").exists()
    np.testing.assert_array_equal(ds.episode(0).obs["pixels/front"], arrays[0]["pixels/front"])


def test_a_truncated_jpeg_and_a_column_of_the_wrong_kind_are_named(tmp_path):
    root = tmp_path / "jpeg"
    write_dataset(root, [3], image=True, images="jpeg")
    table = pq.read_table(root / "data/episode_000000.parquet")
    frames = table["obs.pixels/front"].to_pylist()
    frames[1] = frames[1][:30]
    i = table.schema.get_field_index("obs.pixels/front")
    replace_file(root, 0, table.set_column(i, "obs.pixels/front", pa.array(frames, pa.binary())))
    assert "step 1 holds a JPEG without its frame header (truncated)" in verify(root).findings[0].problem

    raw = tmp_path / "raw"  # PNG frames in a dataset whose info.json says raw
    write_dataset(raw, [3], image=True)
    column = pa.array([_png(f) for f in episode_arrays(0, 3, True)["pixels/front"]], pa.binary())
    replace_file(raw, 0, table.set_column(i, "obs.pixels/front", column))
    want = ("observation 'pixels/front' holds one encoded (PNG/JPEG) frame per step, meta/info.json says "
            "shape (12, 16, 3) uint8 stored as raw")
    assert want in verify(raw).findings[0].problem
