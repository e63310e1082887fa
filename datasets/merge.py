"""Merge episode datasets with the same features into a new (or existing) dataset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robolearn.datasets.format import DatasetError
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.writer import EpisodeWriter


def merge_datasets(sources: Sequence[str | Path], out: str | Path, only_success: bool = False) -> int:
    """Append every (successful, if ``only_success``) episode of ``sources`` to ``out``; returns the count.

    Episode files are copied byte for byte and each source is fully checked first (sizes and sha256), so a
    damaged source is reported by name before anything is written. ``out`` may already exist when its
    features match.
    """
    if not sources:
        raise DatasetError("merge needs at least one source dataset")
    datasets = [EpisodeDataset(s) for s in sources]
    target = Path(out).resolve()
    for ds in datasets:
        if ds.root.resolve() == target:
            raise DatasetError(f"cannot merge {ds.root} into itself: give --out a new or another dataset")
    from robolearn.datasets.repair import verify

    for ds in datasets:
        report = verify(ds.root)
        if not report.ok:
            problems = "; ".join(str(f) for f in report.findings if f.kind == "corrupt")
            hint = f"run `robolearn dataset repair {ds.root}`"
            raise DatasetError(f"cannot merge {ds.root}: {problems}; {hint}")
        if diff := datasets[0].info.same_features(ds.info):
            raise DatasetError(f"cannot merge {ds.root} with {datasets[0].root}: {diff}")
        if ds.info.images != datasets[0].info.images:  # files are copied as they are: one encoding throughout
            raise DatasetError(f"cannot merge {ds.root} (images stored as {ds.info.images}) with "
                               f"{datasets[0].root} ({datasets[0].info.images}): merge datasets of one encoding")
    count = 0
    info = datasets[0].info
    info.extra = {**info.extra, "merged_from": [str(ds.root) for ds in datasets]}
    with EpisodeWriter(out, info, images=info.images) as writer:
        for ds in datasets:
            for rec in ds.records:
                if only_success and not rec.success:
                    continue
                meta = {**rec.meta, "source": str(ds.root), "source_episode": rec.index}
                rec = type(rec).from_dict({**rec.to_dict(), "meta": meta})
                writer.add_episode_file(ds.check_file(rec), rec)
                count += 1
    return count
