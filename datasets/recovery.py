"""Crash recovery shared by the writer and ``repair``: the writer lock, file hashes, and the cleanup of
what an interrupted writer leaves behind (``.partial`` files, a torn index line, unindexed complete files).

The writer runs :func:`recover_leftovers` when it opens a dataset; :mod:`robolearn.datasets.repair` runs it
too, then checks the committed episodes. Neither module imports the other for it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from robolearn.core.durable import file_sha256
from robolearn.datasets.format import (
    DATA_DIR,
    EPISODE_META_KEY,
    INDEX_PATH,
    LOCK_PATH,
    PARTIAL_SUFFIX,
    DatasetError,
    EpisodeRecord,
    append_line,
    atomic_write_bytes,
    file_number,
    read_index,
    resolve_inside,
)


def acquire_lock(root: Path) -> int:
    """Take the dataset's writer lock; raises :class:`DatasetError` when another process holds it."""
    fd = os.open(root / LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatasetError(f"{root}: another process is writing this dataset ({LOCK_PATH} locked)") from None
    return fd


def footer_record(path: Path) -> EpisodeRecord | None:
    """The episode record stored in a data file's Parquet footer; None if the file is not complete."""
    try:
        meta = pq.read_metadata(path).metadata or {}
        return EpisodeRecord.from_dict(json.loads(meta[EPISODE_META_KEY]))
    except (pa.ArrowException, OSError, KeyError, json.JSONDecodeError, TypeError):
        return None


def orphans(root: Path, records: list[EpisodeRecord]) -> list[Path]:
    """Complete-looking data files that no committed record references, in file-number order."""
    referenced = {r.file for r in records}
    data = root / DATA_DIR
    if not data.is_dir():
        return []
    files = [p for p in data.iterdir() if p.suffix == ".parquet" and file_number(p.name) is not None]
    return sorted((p for p in files if f"{DATA_DIR}/{p.name}" not in referenced), key=lambda p: p.name)


def recover_leftovers(root: Path) -> list[str]:
    """Clean up after a crashed writer (the caller holds the writer lock); returns what was done.

    Deletes ``.partial`` files, drops a torn last index line, and indexes complete orphan files (renamed
    but killed before their index line); unreadable orphans go to ``quarantine/``.
    """
    if (root / DATA_DIR).exists():  # deletes and moves below must not reach outside through a linked data/
        resolve_inside(root, DATA_DIR, f"{root / DATA_DIR}", fix="make data/ a real directory of the dataset")
    done: list[str] = []
    for p in sorted((root / DATA_DIR).glob("*" + PARTIAL_SUFFIX)):
        p.unlink()
        done.append(f"deleted incomplete episode {DATA_DIR}/{p.name}")
    records, tail = read_index(root)
    if tail is not None:
        raw = (root / INDEX_PATH).read_bytes()
        atomic_write_bytes(root / INDEX_PATH, raw[: raw.rfind(b"\n") + 1])
        done.append(f"dropped the torn last line of {INDEX_PATH} (an episode that was not committed)")
    for p in orphans(root, records):
        if p.is_symlink():  # episode files are regular files; a link may point anywhere
            quarantine(root, p)
            done.append(f"moved symlink {DATA_DIR}/{p.name} to quarantine/ (its target is untouched)")
            continue
        rec = footer_record(p)
        if rec is None:
            quarantine(root, p)
            done.append(f"moved unreadable {DATA_DIR}/{p.name} to quarantine/")
            continue
        rec.index, rec.file = len(records), f"{DATA_DIR}/{p.name}"
        rec.bytes, rec.sha256 = p.stat().st_size, file_sha256(p)
        append_line(root / INDEX_PATH, json.dumps(rec.to_dict()))
        records.append(rec)
        done.append(f"indexed complete episode {rec.file} as episode {rec.index}")
    return done


def quarantine(root: Path, path: Path) -> Path:
    """Move ``path`` (a file or symlink in a directory of ``root``) to ``quarantine/``; returns where.

    A symlink is moved itself, never its target; a name already in quarantine gets a ``.N`` suffix, so
    nothing quarantined earlier is overwritten. Raises :class:`DatasetError` for a path outside ``root``.
    """
    base, parent = root.resolve(), path.parent.resolve()
    if parent != base and base not in parent.parents:
        raise DatasetError(f"refusing to move {path} into quarantine/: it is outside the dataset {root}")
    dest = root / "quarantine"
    dest.mkdir(exist_ok=True)
    target, n = dest / path.name, 1
    while target.exists() or target.is_symlink():
        target, n = dest / f"{path.name}.{n}", n + 1
    shutil.move(str(path), target)
    return target
