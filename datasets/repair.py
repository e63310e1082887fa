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

import pyarrow.parquet as pq

from robolearn.core.durable import file_sha256
from robolearn.datasets.format import (
    DATA_DIR,
    INDEX_PATH,
    INFO_PATH,
    PARTIAL_SUFFIX,
    DatasetCorruptError,
    DatasetError,
    DatasetInfo,
    EpisodeRecord,
    atomic_write_bytes,
    atomic_write_json,
    read_index,
    read_info,
)
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.rebuild import info_from_files
from robolearn.datasets.recovery import (
    acquire_lock,
    footer_record,
    orphans,
    quarantine,
    recover_leftovers,
)
from robolearn.datasets.validate import column_problem, stats_problem
from robolearn.datasets.writer import write_stats_snapshot


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


def _check_episode(ds: EpisodeDataset, i: int, deep: bool) -> str | None:
    """None when episode ``i`` is intact, else the problem."""
    rec = ds.records[i]
    try:
        path = ds.check_file(rec)
        if problem := stats_problem(rec.stats):
            return f"episode {rec.index}: {problem}"
        if deep:
            if rec.sha256 and file_sha256(path) != rec.sha256:
                return f"episode {rec.index}: {path.name} does not match its sha256 (modified or damaged)"
            ds.episode(i)  # decodes every column the reader uses: types as info.json says, numbers finite
            if problem := column_problem(ds.info, pq.read_schema(path)):
                return f"episode {rec.index} ({rec.file}): {problem}"
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
    for p in orphans(root, records):
        complete = footer_record(p) is not None
        problem = "complete but never indexed" if complete else "not indexed and unreadable"
        report.findings.append(Finding(f"{DATA_DIR}/{p.name}", problem, "leftover"))
    return report


def _drop_episode(root: Path, rec: EpisodeRecord) -> str:
    """Quarantine a damaged episode's file when it lies inside ``root``; returns what was done.

    A record naming a path outside the dataset (absolute, ``..``, through a symlinked directory) moves
    nothing: only the record is dropped.
    """
    rel = Path(str(rec.file))
    outside = f"dropped episode {rec.index}: its record names {str(rec.file)!r}, outside the dataset (nothing moved)"
    if not str(rec.file) or rel.is_absolute() or ".." in rel.parts:
        return outside
    path = root / rel
    if not (path.exists() or path.is_symlink()):
        return f"removed damaged episode {rec.index} ({rec.file} is missing)"
    try:
        quarantine(root, path)
    except DatasetError:
        return outside
    return f"removed damaged episode {rec.index} ({rec.file} -> quarantine/)"


def _rebuild_info(root: Path, done: list[str]) -> DatasetInfo:
    """Write ``meta/info.json`` from the episode files, keeping a damaged one as ``info.json.bad``."""
    info, source = info_from_files(root)
    path = root / INFO_PATH
    kept = ""
    if path.exists():
        shutil.copyfile(path, root / (INFO_PATH + ".bad"))
        kept = f" (the damaged one kept as {INFO_PATH}.bad)"
    atomic_write_json(path, info.to_dict())
    done.append(f"rebuilt {INFO_PATH} from {source}{kept}")
    return info


def repair(root: str | Path) -> list[str]:
    """Make the dataset verify: clean leftovers, quarantine damaged episodes and renumber the rest.

    Returns one line per action. A damaged index is rebuilt from the data files' footers, a missing or
    damaged ``meta/info.json`` from the episode files (see rebuild.py).
    """
    root = Path(root)
    try:
        info: DatasetInfo | None = read_info(root)
    except DatasetCorruptError:
        info = None  # rebuilt below, under the writer lock
    (root / "meta").mkdir(exist_ok=True)
    fd = acquire_lock(root)
    try:
        done: list[str] = []
        if info is None:
            info = _rebuild_info(root, done)
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
                    done.append(_drop_episode(root, rec))
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
