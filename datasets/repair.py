"""Verify and repair episode datasets after crashes or disk damage.

Two kinds of finding:

* ``leftover``: what an interrupted writer leaves behind and the format expects: a ``.partial`` episode
  file, a torn last line of ``meta/episodes.jsonl``, a complete data file whose index line was never
  written. The committed dataset is intact; a dataset with only leftovers *verifies*.
* ``corrupt``: a committed episode whose file is missing, truncated, changed (sha256) or unreadable, or a
  damaged index. Training on it would fail or be wrong; ``repair`` moves such files to ``quarantine/``
  and drops their episodes from the index.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from robolearn.datasets.format import (
    DATA_DIR,
    EPISODE_META_KEY,
    INDEX_PATH,
    PARTIAL_SUFFIX,
    DatasetCorruptError,
    EpisodeRecord,
    append_line,
    atomic_write_bytes,
    file_number,
    read_index,
    read_info,
)
from robolearn.datasets.reader import EpisodeDataset


@dataclass
class Finding:
    path: str
    problem: str
    kind: Literal["leftover", "corrupt"]
    episode: int | None = None
    """The committed episode concerned, if any."""

    def __str__(self) -> str:
        return f"[{self.kind}] {self.path}: {self.problem}"


@dataclass
class VerifyReport:
    root: str
    episodes: int = 0
    steps: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no committed data is damaged (leftovers of a crash are allowed)."""
        return not any(f.kind == "corrupt" for f in self.findings)

    @property
    def bad_episodes(self) -> list[int]:
        return sorted({f.episode for f in self.findings if f.kind == "corrupt" and f.episode is not None})


def _footer_record(path: Path) -> EpisodeRecord | None:
    """The episode record stored in a data file's Parquet footer; None if the file is not complete."""
    try:
        meta = pq.read_metadata(path).metadata or {}
        return EpisodeRecord.from_dict(json.loads(meta[EPISODE_META_KEY]))
    except (pa.ArrowException, OSError, KeyError, json.JSONDecodeError, TypeError):
        return None


def _orphans(root: Path, records: list[EpisodeRecord]) -> list[Path]:
    """Complete-looking data files that no committed record references, in file-number order."""
    referenced = {r.file for r in records}
    data = root / DATA_DIR
    if not data.is_dir():
        return []
    files = [p for p in data.iterdir() if p.suffix == ".parquet" and file_number(p.name) is not None]
    return sorted((p for p in files if f"{DATA_DIR}/{p.name}" not in referenced), key=lambda p: p.name)


def _check_episode(ds: EpisodeDataset, i: int, deep: bool) -> str | None:
    """None when episode ``i`` is intact, else the problem."""
    from robolearn.datasets.writer import file_sha256

    rec = ds.records[i]
    try:
        path = ds.check_file(rec)
        if deep:
            if rec.sha256 and file_sha256(path) != rec.sha256:
                return f"episode {rec.index}: {path.name} does not match its sha256 (modified or damaged)"
            ds.read_table(i)
    except DatasetCorruptError as err:
        return str(err).split("; run")[0]
    return None


def verify(root: str | Path, deep: bool = True) -> VerifyReport:
    """Check a dataset; ``deep`` also hashes and decodes every committed file."""
    root = Path(root)
    read_info(root)  # raises DatasetError for a missing dataset
    report = VerifyReport(str(root))
    try:
        records, tail = read_index(root)
    except DatasetCorruptError as err:
        report.findings.append(Finding(INDEX_PATH, str(err), "corrupt"))
        return report
    if tail is not None:
        torn = "torn last line (writer killed while committing)"
        report.findings.append(Finding(INDEX_PATH, torn, "leftover"))
    ds = EpisodeDataset(root, check_sizes=False)
    for i, rec in enumerate(records):
        problem = _check_episode(ds, i, deep)
        if problem:
            report.findings.append(Finding(rec.file, problem, "corrupt", rec.index))
    report.episodes, report.steps = len(records), sum(r.length for r in records)
    for p in sorted((root / DATA_DIR).glob("*" + PARTIAL_SUFFIX)):
        problem = "incomplete episode (writer interrupted)"
        report.findings.append(Finding(f"{DATA_DIR}/{p.name}", problem, "leftover"))
    for p in _orphans(root, records):
        complete = _footer_record(p) is not None
        problem = "complete but never indexed" if complete else "not indexed and unreadable"
        report.findings.append(Finding(f"{DATA_DIR}/{p.name}", problem, "leftover"))
    return report


def recover_leftovers(root: Path) -> list[str]:
    """Clean up after a crashed writer (the caller holds the writer lock); returns what was done.

    Deletes ``.partial`` files, drops a torn last index line, and indexes complete orphan files (renamed
    but killed before their index line); unreadable orphans go to ``quarantine/``.
    """
    done: list[str] = []
    for p in sorted((root / DATA_DIR).glob("*" + PARTIAL_SUFFIX)):
        p.unlink()
        done.append(f"deleted incomplete episode {DATA_DIR}/{p.name}")
    records, tail = read_index(root)
    if tail is not None:
        raw = (root / INDEX_PATH).read_bytes()
        atomic_write_bytes(root / INDEX_PATH, raw[: raw.rfind(b"\n") + 1])
        done.append(f"dropped the torn last line of {INDEX_PATH} (an episode that was not committed)")
    for p in _orphans(root, records):
        rec = _footer_record(p)
        if rec is None:
            _quarantine(root, p)
            done.append(f"moved unreadable {DATA_DIR}/{p.name} to quarantine/")
            continue
        from robolearn.datasets.writer import file_sha256

        rec.index, rec.file = len(records), f"{DATA_DIR}/{p.name}"
        rec.bytes, rec.sha256 = p.stat().st_size, file_sha256(p)
        append_line(root / INDEX_PATH, json.dumps(rec.to_dict()))
        records.append(rec)
        done.append(f"indexed complete episode {rec.file} as episode {rec.index}")
    return done


def _quarantine(root: Path, path: Path) -> None:
    dest = root / "quarantine"
    dest.mkdir(exist_ok=True)
    shutil.move(str(path), dest / path.name)


def repair(root: str | Path) -> list[str]:
    """Make the dataset verify: clean leftovers, quarantine damaged episodes and renumber the rest.

    Returns one line per action. A damaged index is rebuilt from the data files' footers.
    """
    from robolearn.datasets.writer import acquire_lock, write_stats_snapshot

    root = Path(root)
    info = read_info(root)
    fd = acquire_lock(root)
    try:
        done: list[str] = []
        try:
            read_index(root)
        except DatasetCorruptError:
            shutil.copyfile(root / INDEX_PATH, root / (INDEX_PATH + ".bad"))
            atomic_write_bytes(root / INDEX_PATH, b"")
            done.append(f"{INDEX_PATH} was damaged (kept as {INDEX_PATH}.bad); rebuilt from the data files")
        done += recover_leftovers(root)
        report = verify(root, deep=True)
        bad = set(report.bad_episodes)
        if bad:
            records, _ = read_index(root)
            kept = []
            for rec in records:
                if rec.index in bad:
                    if (root / rec.file).exists():
                        _quarantine(root, root / rec.file)
                    done.append(f"removed damaged episode {rec.index} ({rec.file} -> quarantine/)")
                    continue
                rec.index = len(kept)
                kept.append(rec)
            lines = "".join(json.dumps(r.to_dict()) + "\n" for r in kept)
            atomic_write_bytes(root / INDEX_PATH, lines.encode())
        records, _ = read_index(root)
        write_stats_snapshot(root, info, records)
        return done
    finally:
        os.close(fd)
