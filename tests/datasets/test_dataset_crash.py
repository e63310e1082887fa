"""Crash safety: SIGKILL mid-write, torn index lines, orphan files, truncated and modified files."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import episode_arrays, write_dataset

from robolearn.datasets.format import INDEX_PATH, DatasetCorruptError
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.repair import repair, verify

REPO = Path(__file__).resolve().parents[2]
HELPERS = Path(__file__).resolve().parent

WRITER_SCRIPT = textwrap.dedent(
    """
    import hashlib, sys, time
    sys.path[:0] = [{repo!r}, {helpers!r}]
    from dataset_helpers import episode_arrays, make_info
    from robolearn.datasets.writer import EpisodeWriter

    info = make_info(image=True)
    w = EpisodeWriter(sys.argv[1], info, flush_every=3, images=sys.argv[3])
    e = 0
    while True:
        a = episode_arrays(e, 10, image=True)
        w.begin_episode(seed=e)
        for t in range(10):
            w.add_step({{k: a[k][t] for k in info.observation}}, a["action"][t])
            if e == int(sys.argv[2]) and t == 6:
                print("MID", flush=True)
                time.sleep(60)
        rec = w.end_episode()
        data = open(sys.argv[1] + "/" + rec.file, "rb").read()
        print("COMMITTED", rec.index, rec.file, hashlib.sha256(data).hexdigest(), flush=True)
        e += 1
    """
)


def _spawn(root: Path, pause_episode: int, images: str = "raw") -> subprocess.Popen:
    script = WRITER_SCRIPT.format(repo=str(REPO), helpers=str(HELPERS))
    return subprocess.Popen([sys.executable, "-c", script, str(root), str(pause_episode), images],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _read_until(proc: subprocess.Popen, predicate) -> list[str]:
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if predicate(lines):
            return lines
    proc.kill()
    raise AssertionError(f"writer subprocess did not get there: {lines}")


def _committed(lines: list[str]) -> dict[str, str]:
    return {parts[2]: parts[3] for parts in (line.split() for line in lines) if parts[0] == "COMMITTED"}


@pytest.mark.parametrize("images", ["raw", "png"])
def test_sigkill_mid_episode_keeps_earlier_episodes_bit_identical(tmp_path, images):
    root = tmp_path / "ds"
    proc = _spawn(root, pause_episode=3, images=images)
    lines = _read_until(proc, lambda ls: ls[-1] == "MID")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = _committed(lines)
    assert len(committed) == 3
    report = verify(root)
    assert report.ok and report.episodes == 3, report.findings
    assert [f.kind for f in report.findings] == ["leftover"]  # the .partial of episode 3
    for file, digest in committed.items():
        assert hashlib.sha256((root / file).read_bytes()).hexdigest() == digest
    ds = EpisodeDataset(root)
    np.testing.assert_array_equal(ds.episode(2).obs["pixels/front"], episode_arrays(2, 10, True)["pixels/front"])

    # Resuming cleans the leftover and appends after the committed episodes.
    write_dataset(root, [4], image=True, start=3)
    ds = EpisodeDataset(root)
    assert [r.length for r in ds.records] == [10, 10, 10, 4]
    assert not list((root / "data").glob("*.partial"))
    assert verify(root).findings == [] and ds.info.images.codec == images


def test_sigkill_at_an_arbitrary_moment_leaves_a_dataset_that_verifies(tmp_path):
    root = tmp_path / "ds"
    proc = _spawn(root, pause_episode=-1)
    lines = _read_until(proc, lambda ls: len(_committed(ls)) >= 4)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = _committed(lines)
    report = verify(root)
    assert report.ok, report.findings
    assert report.episodes >= len(committed)
    for file, digest in committed.items():
        assert hashlib.sha256((root / file).read_bytes()).hexdigest() == digest


def test_torn_index_line_is_an_uncommitted_episode(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [3, 4])
    with open(root / INDEX_PATH, "a") as f:
        f.write('{"index": 2, "file": "data/epis')
    ds = EpisodeDataset(root)
    assert len(ds) == 2 and ds.torn_tail is not None
    report = verify(root)
    assert report.ok and [f.kind for f in report.findings] == ["leftover"]
    write_dataset(root, [5], start=2)
    assert [r.length for r in EpisodeDataset(root).records] == [3, 4, 5]


def test_complete_file_without_index_line_is_reindexed(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [3, 4])
    index = root / INDEX_PATH
    lines = index.read_text().splitlines(keepends=True)
    index.write_text(lines[0])  # killed after the rename, before the index append
    report = verify(root)
    assert report.ok and "never indexed" in report.findings[0].problem
    assert repair(root) == ["indexed complete episode data/episode_000001.parquet as episode 1"]
    ds = EpisodeDataset(root)
    assert [r.length for r in ds.records] == [3, 4]
    assert json.loads(index.read_text().splitlines()[1])["sha256"] == json.loads(lines[1])["sha256"]


def test_truncated_file_is_named_and_repair_quarantines_it(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [3, 4, 5])
    victim = root / "data/episode_000001.parquet"
    with open(victim, "r+b") as f:
        f.truncate(victim.stat().st_size // 2)
    with pytest.raises(DatasetCorruptError, match=r"episode_000001\.parquet.*robolearn dataset repair"):
        EpisodeDataset(root)
    report = verify(root)
    assert not report.ok and report.bad_episodes == [1]
    done = repair(root)
    assert any("removed damaged episode 1" in line for line in done)
    assert (root / "quarantine/episode_000001.parquet").is_file()
    ds = EpisodeDataset(root)
    assert [r.length for r in ds.records] == [3, 5] and [r.index for r in ds.records] == [0, 1]
    assert verify(root).findings == []
    write_dataset(root, [2], start=3)  # new files never reuse a quarantined or existing name
    assert EpisodeDataset(root).records[-1].file == "data/episode_000003.parquet"


def test_same_size_corruption_is_caught_by_the_checksum(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [6])
    victim = root / "data/episode_000000.parquet"
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0xFF
    victim.write_bytes(bytes(data))
    EpisodeDataset(root)  # sizes still match: opening is cheap and succeeds
    report = verify(root)
    assert not report.ok and "sha256" in report.findings[0].problem
    assert verify(root, deep=False).ok


def test_damaged_index_is_rebuilt_from_file_footers(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [3, 4, 2])
    index = root / INDEX_PATH
    lines = index.read_text().splitlines(keepends=True)
    index.write_text(lines[0] + "garbage\n" + lines[2])
    with pytest.raises(DatasetCorruptError, match="line 2"):
        EpisodeDataset(root)
    assert not verify(root).ok
    repair(root)
    assert [r.length for r in EpisodeDataset(root).records] == [3, 4, 2]
    assert verify(root).ok
