"""Deleting a study or a series from the archive: its index rows and its files.

Crash-safe in the way of :mod:`pacskit.archive.recovery`: each file is first given a
second name in ``tmp/`` (``….old``), then the rows are dropped in one transaction, then
both names are removed. A run stopped before the commit leaves the study as it was (the
start-up check keeps a file its row still points at); one stopped after it leaves files
whose rows are gone, which the start-up check removes.

Storage Commitment transactions, worklist items and performed procedure steps refer to
instances by UID, not by row, and are left as they are: a later commitment request for a
deleted instance is reported failed (docs/web-actions.md).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pacskit.archive.index import Index
from pacskit.archive.ingest import Ingest
from pacskit.query import Level, Query

LOG = logging.getLogger("pacskit.archive")


@dataclass(frozen=True)
class Deleted:
    """What a deletion removed: the series (their UIDs) and how many instances."""

    study_instance_uid: str
    series: list[str]
    instances: int


def delete(index: Index, ingest: Ingest, study_uid: str, series_uid: str | None = None) -> Deleted | None:
    """Delete the study ``study_uid``, or only its series ``series_uid``: rows and files.
    None when nothing is stored there."""
    match = {"StudyInstanceUID": study_uid}
    if series_uid is not None:
        match["SeriesInstanceUID"] = series_uid
    level = Level.SERIES if series_uid is not None else Level.STUDY
    kept = {item.path: _second_name(ingest, ingest.files / item.path)
            for item in index.instances(Query(level=level, match=match))}
    try:
        removed = index.remove_under(study_uid, series_uid)
    except BaseException:
        _unlink(*(name for name in kept.values() if name is not None))
        raise
    folders: set[Path] = set()
    for item in removed:
        stored = ingest.files / item.path
        _unlink(stored)
        folders.add(stored.parent)
    _unlink(*(name for name in kept.values() if name is not None))
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        for empty in (folder, folder.parent):
            if empty != ingest.files:
                _rmdir(empty)
    if not removed:
        return None
    series = list(dict.fromkeys(item.series_instance_uid for item in removed))
    LOG.info("deleted %s%s: %d instances in %d series", study_uid,
             f" series {series_uid}" if series_uid else "", len(removed), len(series))
    return Deleted(study_uid, series, len(removed))


def _second_name(ingest: Ingest, stored: Path) -> Path | None:
    kept = ingest.scratch_path(".old")
    try:
        os.link(stored, kept)
    except OSError:
        return None
    return kept


def _unlink(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            LOG.warning("cannot remove %s: %s", path, exc.strerror)


def _rmdir(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
