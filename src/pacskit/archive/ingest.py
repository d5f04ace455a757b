"""The one way instances enter the archive: C-STORE, ``archive import`` and (later) STOW-RS.

An instance is written as it came — no decode, no re-encode — to a temporary file in the
data folder, flushed to disk (unless ``fsync`` is off), renamed into place under the
archive layout and indexed; only then is it acknowledged. A failure at any step removes
what was written and becomes a DIMSE status: 0xA700 (out of resources) for the archive's
own trouble, 0xA900 or 0xC000 for data that is not what the request says it is.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from pydicom import Dataset, dcmread
from pydicom.datadict import tag_for_keyword

from pacskit.encoded import file_meta, header_dataset, plain_text
from pacskit.layout import Layout
from pacskit.query import LEVEL_KEYS
from pacskit.settings import ArchiveSettings

ARCHIVE_LAYOUT = Layout("{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm")

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_KEPT_IN_MEMORY = 128 * 1024
_INDEXED_TAGS = frozenset(t for keywords in LEVEL_KEYS.values() for k in keywords
                          if (t := tag_for_keyword(k)) is not None and t >> 16 != 0x0002)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000

LOG = logging.getLogger("pacskit.archive")


class InstanceIndex(Protocol):
    """What ingest needs of the index (see :mod:`pacskit.archive.index`)."""

    def path_of(self, sop_instance_uid: str) -> str | None: ...

    def add(self, header: Dataset, *, path: str, size: int, transfer_syntax: str,
            policy: str = "keep") -> object: ...


@dataclass(frozen=True)
class Received:
    """An instance as it arrived: its dataset still encoded in ``transfer_syntax``."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    dataset: bytes
    source_ae_title: str = ""


@dataclass(frozen=True)
class Ingested:
    """The outcome of one ingest: a DIMSE status, and why when it is not success."""

    status: int
    path: Path | None = None
    duplicate: bool = False
    reason: str = ""


class IngestRefused(Exception):
    """An instance the archive will not take, with the status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Ingest:
    """The data folder and the index, written together.

    Args:
        settings: where the files go, whether each is flushed to disk, and the policy
            for a SOP Instance UID received again.
        index: the index the files are recorded in.
    """

    def __init__(self, settings: ArchiveSettings, index: InstanceIndex) -> None:
        self.index = index
        self.fsync = settings.fsync
        self.policy = settings.duplicates
        self.files = settings.data_dir / "files"
        self.scratch = settings.data_dir / "tmp"
        for folder in (self.files, self.scratch):
            folder.mkdir(parents=True, exist_ok=True)
        self._serial = itertools.count()
        self._scratch_prefix = f"{self.scratch}{os.sep}{os.getpid()}-"
        self._folders: set[Path] = set()

    def ingest(self, item: Received) -> Ingested:
        """Store one received instance; never raises for bad data or a full disk."""
        incoming = self.receive(item.sop_class_uid, item.sop_instance_uid, item.transfer_syntax,
                                item.source_ae_title)
        incoming.write(item.dataset)
        return incoming.finish()

    def receive(self, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str,
                source_ae_title: str = "") -> Incoming:
        """Start storing an instance whose dataset arrives in pieces (see :class:`Incoming`)."""
        return Incoming(self, Received(sop_class_uid, sop_instance_uid, transfer_syntax, b"", source_ae_title))

    def _scratch_path(self) -> Path:
        return Path(f"{self._scratch_prefix}{next(self._serial)}.part")

    def _ensure_folder(self, folder: Path) -> None:
        if folder not in self._folders:
            folder.mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)


class Incoming:
    """One instance being received: its dataset is written, piece by piece as it comes,
    after its file meta information into a temporary file; :meth:`finish` checks, places
    and indexes it, :meth:`discard` removes it. Memory use does not grow with the
    instance's size: a small instance is also kept in memory, so that its header is
    read without reading the file back.
    """

    def __init__(self, ingest: Ingest, item: Received) -> None:
        self.ingest = ingest
        self.item = item
        self.path = ingest._scratch_path()
        self.size = 0
        self._copy: bytearray | None = bytearray()
        self.error: IngestRefused | None = None
        self._fh: BinaryIO | None = None
        try:
            self._fh = open(self.path, "xb")  # noqa: SIM115 - closed in finish or discard
            meta = file_meta(item.sop_class_uid, item.sop_instance_uid, item.transfer_syntax,
                             item.source_ae_title or None)
            self._meta_length = len(meta)
            self.write(meta)
        except OSError as exc:
            self._fail(exc)

    def write(self, data: bytes) -> None:
        """Append a piece of the dataset (after a write error, pieces are dropped)."""
        if self._fh is None:
            return
        try:
            self._fh.write(data)
            self.size += len(data)
        except OSError as exc:
            self._fail(exc)
            return
        if self._copy is not None:
            self._copy += data
            if len(self._copy) > _KEPT_IN_MEMORY:
                self._copy = None

    def discard(self) -> None:
        """Remove what was written (the association was lost, say)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                fh.close()
            except OSError:
                pass
        self.path.unlink(missing_ok=True)

    def finish(self) -> Ingested:
        """Check the dataset against the request, place and index it, and say so; never
        raises for bad data or a full disk (nothing is left when it fails)."""
        try:
            return self._finish()
        except IngestRefused as exc:
            self.discard()
            LOG.warning("refused %s from %s: %s", self.item.sop_instance_uid,
                        self.item.source_ae_title or "?", exc.reason)
            return Ingested(exc.status, reason=exc.reason)

    def _finish(self) -> Ingested:
        ingest, item = self.ingest, self.item
        if self.error is not None:
            raise self.error
        assert self._fh is not None
        try:
            if ingest.fsync:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
        except OSError as exc:
            self._fail(exc)
            raise self.error from None  # type: ignore[misc]
        header, uids = _header(self._read_header(), item)
        relative = ARCHIVE_LAYOUT.relative_path(uids).as_posix()
        target = ingest.files / relative
        existing = ingest.index.path_of(item.sop_instance_uid)
        if existing is not None and ingest.policy == "keep":
            self.discard()
            return Ingested(SUCCESS, ingest.files / existing, duplicate=True)
        placed = self._place(target)
        try:
            ingest.index.add(header, path=relative, size=self.size, transfer_syntax=item.transfer_syntax,
                             policy=ingest.policy)
        except Exception as exc:  # noqa: BLE001 - any index failure: nothing half there
            if placed:
                target.unlink(missing_ok=True)
            LOG.error("cannot index %s: %s", item.sop_instance_uid, exc)
            raise IngestRefused(OUT_OF_RESOURCES, f"the index refused the instance: {exc}") from None
        if existing is not None and existing != relative:
            (ingest.files / existing).unlink(missing_ok=True)
        return Ingested(SUCCESS, target, duplicate=existing is not None)

    def _read_header(self) -> Dataset | Path:
        """The indexed attributes of a small instance, read from its copy in memory;
        the file's path for a large one (or for what only pydicom can read)."""
        copy, self._copy = self._copy, None
        if copy is None:
            return self.path
        try:
            return header_dataset(bytes(copy), self._meta_length, self.item.transfer_syntax, _INDEXED_TAGS)
        except ValueError:
            return self.path

    def _place(self, target: Path) -> bool:
        """Rename the file to ``target``; whether no file was there before."""
        try:
            self.ingest._ensure_folder(target.parent)
            was_there = target.exists()
            os.replace(self.path, target)
        except OSError as exc:
            self._fail(exc)
            raise self.error from None  # type: ignore[misc]
        if self.ingest.fsync:
            try:
                _fsync_folder(target.parent)
            except OSError as exc:
                if not was_there:
                    target.unlink(missing_ok=True)
                self._fail(exc)
                raise self.error from None  # type: ignore[misc]
        return not was_there

    def _fail(self, exc: OSError) -> None:
        self.discard()
        if exc.errno == errno.ENOSPC:
            self.error = IngestRefused(OUT_OF_RESOURCES, "the archive's disk is full")
        else:
            self.error = IngestRefused(OUT_OF_RESOURCES, f"cannot write: {exc.strerror or exc}")


def _header(source: Dataset | Path, item: Received) -> tuple[Dataset, dict[str, str]]:
    """The attributes the index needs (read from ``source`` if it is a file), checked
    against the C-STORE request, and the UIDs that place the file."""
    try:
        header = source if isinstance(source, Dataset) else dcmread(source, stop_before_pixels=True)
        sop_class, sop_instance = plain_text(header, "SOPClassUID"), plain_text(header, "SOPInstanceUID")
        study, series = plain_text(header, "StudyInstanceUID"), plain_text(header, "SeriesInstanceUID")
    except Exception as exc:  # noqa: BLE001 - whatever pydicom cannot read is bad data
        raise IngestRefused(CANNOT_UNDERSTAND, f"the dataset cannot be read: {exc}") from None
    if sop_class != item.sop_class_uid:
        raise IngestRefused(DATASET_DOES_NOT_MATCH_SOP_CLASS,
                            f"SOP Class UID {sop_class} does not match the request's {item.sop_class_uid}")
    if sop_instance != item.sop_instance_uid:
        raise IngestRefused(CANNOT_UNDERSTAND, f"SOP Instance UID {sop_instance} does not match "
                                               f"the request's {item.sop_instance_uid}")
    if not study or not series:
        raise IngestRefused(CANNOT_UNDERSTAND, "the dataset has no Study or Series Instance UID")
    for uid in (study, series, sop_instance):
        if not _UID.match(uid):
            raise IngestRefused(CANNOT_UNDERSTAND, f"{uid[:80]!r} is not a valid UID")
    return header, {"StudyInstanceUID": study, "SeriesInstanceUID": series, "SOPInstanceUID": sop_instance}


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
