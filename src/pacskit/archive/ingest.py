"""The one way instances enter the archive: C-STORE, STOW-RS and ``archive import``.

An instance is written as it came — no decode, no re-encode — to a temporary file in the
data folder's ``tmp/``, flushed to disk (unless ``fsync`` is off) and checked: its UIDs
(PS3.5 9.1, see :mod:`pacskit.archive.uids`) against the request, and the header of its
Pixel Data against its transfer syntax. It is then linked into ``files/`` under a path
made of its canonical UIDs — a name no other file has, never over another file — and
indexed; the index decides, in the same transaction, whether it is a duplicate and
whether it agrees with the patient and study already indexed. Only then is it
acknowledged, the file it replaces (``overwrite``) removed, and its temporary name
dropped. Until then the temporary name is the journal of what is in flight, which the
start-up check (:mod:`pacskit.archive.recovery`) settles after a crash. The CRC-32 of the
file is computed as it is written and indexed with it: a Storage Commitment request
(PS3.4 J) checks the stored file against it.

A failure at any step leaves the archive as it was and becomes a DIMSE status (PS3.4
B.2.3): 0xA700 (out of resources) for the archive's own trouble, 0xA900 (does not match
SOP class) for a dataset the archive will not take as it is, 0xC000 (cannot
understand) for one it cannot read. See docs/archive-integrity.md.
"""

from __future__ import annotations

import errno
import itertools
import logging
import mmap
import os
import secrets
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Protocol

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword

from pacskit.archive.uids import canonical_uid
from pacskit.dataset_check import check_dataset
from pacskit.deflate import HEAD, InflationLimitExceeded, inflate_into, instance_limit
from pacskit.encoded import (
    UNDEFINED,
    Encoding,
    file_meta,
    header_and_pixel_data_length,
)
from pacskit.net.wire import Fragment
from pacskit.query import LEVEL_KEYS
from pacskit.settings import ArchiveSettings
from pacskit.transfer_syntax import DEFLATED

_KEPT_IN_MEMORY = 128 * 1024
_INDEXED_TAGS = frozenset(t for keywords in LEVEL_KEYS.values() for k in keywords
                          if (t := tag_for_keyword(k)) is not None and t >> 16 != 0x0002)
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", EXPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.2",
                             DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN})
"""The native (not encapsulated) transfer syntaxes, where encapsulated Pixel Data is
refused (the deflated one is read once inflated)."""
HIERARCHY_UIDS = (("SOPClassUID", "SOP Class UID"), ("SOPInstanceUID", "SOP Instance UID"),
                  ("StudyInstanceUID", "Study Instance UID"), ("SeriesInstanceUID", "Series Instance UID"))

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000

LOG = logging.getLogger("pacskit.archive")
LIVE_SCRATCH_PREFIXES: set[str] = set()
"""The temporary-file name prefixes of the :class:`Ingest` objects open in this process
(the start-up check leaves their files alone)."""


class InstanceIndex(Protocol):
    """What ingest needs of the index (see :mod:`pacskit.archive.index`)."""

    def path_of(self, sop_instance_uid: str) -> str | None: ...

    def add(self, header: Dataset, *, path: str, size: int, transfer_syntax: str,
            policy: str = "keep", crc32: int | None = None) -> AddOutcome: ...


class AddOutcome(Protocol):
    """What :meth:`InstanceIndex.add` says it did."""

    @property
    def existed(self) -> bool: ...

    @property
    def path(self) -> str: ...

    @property
    def replaced_path(self) -> str | None: ...


class InstanceConflict(Exception):
    """The index refuses an instance that contradicts what it holds: ``reason`` is for
    the peer, ``detail`` for the log."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


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
    """The outcome of one ingest: a DIMSE status, and why when it is not success; the
    study and series of what was stored."""

    status: int
    path: Path | None = None
    duplicate: bool = False
    reason: str = ""
    study_uid: str = ""
    series_uid: str = ""


class IngestRefused(Exception):
    """An instance the archive will not take: the status to answer, the ``reason`` to
    give the peer (an Error Comment: short, and none of the peer's bytes), and what
    else the log should say."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.detail = detail


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
        self.scratch_prefix = f"{os.getpid()}-{secrets.token_hex(4)}-"
        LIVE_SCRATCH_PREFIXES.add(self.scratch_prefix)
        self._folders: set[str] = set()

    def close(self) -> None:
        """No more instances come through here (its temporary files are no longer in
        flight)."""
        LIVE_SCRATCH_PREFIXES.discard(self.scratch_prefix)

    def ingest(self, item: Received) -> Ingested:
        """Store one received instance; never raises for bad data or a full disk. An
        interrupt (Ctrl-C) removes the temporary file before it goes on."""
        incoming = self.receive(item.sop_class_uid, item.sop_instance_uid, item.transfer_syntax,
                                item.source_ae_title)
        try:
            incoming.write(item.dataset)
            return incoming.finish()
        except BaseException:
            incoming.discard()
            raise

    def receive(self, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str,
                source_ae_title: str = "") -> Incoming:
        """Start storing an instance whose dataset arrives in pieces (see :class:`Incoming`)."""
        return Incoming(self, Received(sop_class_uid, sop_instance_uid, transfer_syntax, b"", source_ae_title))

    def scratch_path(self, suffix: str = ".part") -> Path:
        """A new name in ``tmp/`` owned by this process (see :mod:`pacskit.archive.recovery`)."""
        return self._scratch_path(suffix)

    def _scratch_path(self, suffix: str = ".part") -> Path:
        return self.scratch / f"{self.scratch_prefix}{next(self._serial)}{suffix}"

    def _ensure_folder(self, folder: str, *, again: bool = False) -> None:
        if again or folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)


class Incoming:
    """One instance being received: its dataset is written, piece by piece as it comes,
    after its file meta information into a temporary file; :meth:`finish` checks, places
    and indexes it, :meth:`discard` removes it. Memory use does not grow with the
    instance's size: a small instance is also kept in memory, so that its header is
    read without reading the file back. A request whose UIDs are not valid opens no
    file: its dataset is dropped as it arrives and :meth:`finish` refuses it.
    """

    def __init__(self, ingest: Ingest, item: Received) -> None:
        self.ingest = ingest
        self.item = item
        self.path = ingest._scratch_path()
        self.size = 0
        self.crc32 = 0
        self._copy: bytearray | None = bytearray()
        self.error: IngestRefused | None = None
        self._fh: BinaryIO | None = None
        try:
            self.item = _canonical_request(item)
        except IngestRefused as exc:
            self.error = exc
            return
        try:
            self._fh = open(self.path, "xb")  # noqa: SIM115 - closed in finish or discard
            meta = file_meta(self.item.sop_class_uid, self.item.sop_instance_uid, self.item.transfer_syntax,
                             item.source_ae_title or None)
            self._meta_length = len(meta)
            self.write(meta)
        except OSError as exc:
            self._fail(exc)

    def write(self, data: Fragment) -> None:
        """Append a piece of the dataset (after a write error, pieces are dropped)."""
        if self._fh is None:
            return
        try:
            self._fh.write(data)
            self.size += len(data)
            self.crc32 = zlib.crc32(data, self.crc32)
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
            LOG.warning("refused %s from %s: %s%s", _shown(self.item.sop_instance_uid),
                        _shown(self.item.source_ae_title or "?"), exc.reason,
                        f" ({exc.detail})" if exc.detail else "")
            return Ingested(exc.status, reason=exc.reason)
        except Exception as exc:  # noqa: BLE001 - the archive's own trouble: nothing left behind
            self.discard()
            LOG.error("cannot store %s: %s", _shown(self.item.sop_instance_uid), type(exc).__name__)
            return Ingested(OUT_OF_RESOURCES, reason=f"the archive failed to store it ({type(exc).__name__})")

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
        header, pixel_data_length = self._read_header()
        uids = _checked(header, item, pixel_data_length)
        existing = ingest.index.path_of(item.sop_instance_uid)
        if existing is not None and ingest.policy == "keep":
            self.discard()
            return Ingested(SUCCESS, ingest.files / existing, duplicate=True, **_placed(uids))
        placed = self._link(uids)
        kept = self._second_name(ingest.files / existing) if existing is not None else None
        try:
            added = ingest.index.add(header, path=placed, size=self.size, transfer_syntax=item.transfer_syntax,
                                     policy=ingest.policy, crc32=self.crc32)
        except Exception as exc:  # noqa: BLE001 - any index failure: nothing half there
            (ingest.files / placed).unlink(missing_ok=True)
            if kept is not None:
                kept.unlink(missing_ok=True)
            if isinstance(exc, InstanceConflict):
                raise IngestRefused(DATASET_DOES_NOT_MATCH_SOP_CLASS, exc.reason, exc.detail) from None
            LOG.error("cannot index %s: %s", item.sop_instance_uid, exc)
            raise IngestRefused(OUT_OF_RESOURCES, f"the index refused the instance: {exc}") from None
        if added.existed and ingest.policy == "keep":
            (ingest.files / placed).unlink(missing_ok=True)
            self.discard()
            return Ingested(SUCCESS, ingest.files / added.path, duplicate=True, **_placed(uids))
        if added.replaced_path is not None and added.replaced_path != placed:
            (ingest.files / added.replaced_path).unlink(missing_ok=True)
        if kept is not None:
            kept.unlink(missing_ok=True)
        self.discard()
        return Ingested(SUCCESS, ingest.files / placed, duplicate=added.existed, **_placed(uids))

    def _read_header(self) -> tuple[Dataset, int | None]:
        """The indexed attributes and the Pixel Data length field (:data:`UNDEFINED`
        when encapsulated; None without Pixel Data), once the whole dataset is found well
        formed: every element within the stream, sequences nested at most
        :data:`~pacskit.encoded.MAX_NESTING` deep. A small instance is read from its copy
        in memory, a large one from its file, mapped (its pixel data is not read); a
        deflated one is inflated within :func:`~pacskit.deflate.instance_limit` first."""
        copy, self._copy = self._copy, None
        syntax = self.item.transfer_syntax
        if syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
            with self._inflated() as inflated:
                return _parsed(inflated, 0, EXPLICIT_VR_LITTLE_ENDIAN)
        if syntax in DEFLATED:
            syntax = EXPLICIT_VR_LITTLE_ENDIAN  # deflated frames, encapsulated (PS3.5 A.4)
        if copy is not None:
            return _parsed(bytes(copy), self._meta_length, syntax)
        with open(self.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return _parsed(mapped, self._meta_length, syntax)

    @contextmanager
    def _inflated(self) -> Iterator[bytes | mmap.mmap]:
        """The inflated dataset: in memory up to :data:`~pacskit.deflate.HEAD` bytes, else
        in an unnamed file of ``tmp/``, mapped.

        Raises:
            IngestRefused: 0xA700, it inflates beyond the limit; 0xC000, it does not inflate.
        """
        compressed = self.size - self._meta_length
        limit = instance_limit(compressed)
        with open(self.path, "rb") as source, _Spill(self.ingest.scratch) as out:
            source.seek(self._meta_length)
            try:
                inflate_into(source, limit, out.write)
            except InflationLimitExceeded:
                raise IngestRefused(OUT_OF_RESOURCES, f"the dataset inflates beyond {limit >> 20} MiB, the limit",
                                    f"{compressed} deflated bytes") from None
            except ValueError as exc:
                raise IngestRefused(CANNOT_UNDERSTAND, "the deflated dataset cannot be inflated", str(exc)) from None
            with out.view() as view:
                yield view

    def _link(self, uids: dict[str, str]) -> str:
        """Link the temporary file into ``files/`` under its UIDs' path — or, when a file
        already has that name (the instance stored before, or arriving concurrently), a
        name of its own beside it — and return the path relative to ``files/``."""
        folder = f"{uids['StudyInstanceUID']}/{uids['SeriesInstanceUID']}"
        sop = uids["SOPInstanceUID"]
        name = f"{sop}.dcm"
        target = f"{self.ingest.files}/{folder}"
        try:
            self.ingest._ensure_folder(target)
            for attempt in itertools.count():
                try:
                    os.link(self.path, f"{target}/{name}")
                    break
                except FileExistsError:
                    name = f"{sop}.{secrets.token_hex(6)}.dcm"
                except FileNotFoundError:
                    if attempt:
                        raise
                    self.ingest._ensure_folder(target, again=True)
        except OSError as exc:
            self._fail(exc)
            raise self.error from None  # type: ignore[misc]
        if self.ingest.fsync:
            try:
                _fsync_folder(target)
            except OSError as exc:
                Path(target, name).unlink(missing_ok=True)
                self._fail(exc)
                raise self.error from None  # type: ignore[misc]
        return f"{folder}/{name}"

    def _second_name(self, stored: Path) -> Path | None:
        """A second name in ``tmp/`` for the stored file an overwrite replaces, kept
        until the replacement is settled (for the start-up check)."""
        kept = self.ingest._scratch_path(".old")
        try:
            os.link(stored, kept)
        except OSError:
            return None
        return kept

    def _fail(self, exc: OSError) -> None:
        self.discard()
        if exc.errno == errno.ENOSPC:
            self.error = IngestRefused(OUT_OF_RESOURCES, "the archive's disk is full")
        else:
            self.error = IngestRefused(OUT_OF_RESOURCES, f"cannot write: {exc.strerror or exc}")


class _Spill:
    """Bytes written in memory up to :data:`~pacskit.deflate.HEAD`, then into an unnamed
    temporary file in ``folder`` (gone when closed, or when the process dies)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.memory = bytearray()
        self.file: BinaryIO | None = None

    def write(self, data: bytes) -> None:
        if self.file is None and len(self.memory) + len(data) <= HEAD:
            self.memory += data
            return
        if self.file is None:
            self.file = tempfile.TemporaryFile(dir=self.folder)  # noqa: SIM115 - closed by __exit__
            self.file.write(self.memory)
            self.memory = bytearray()
        self.file.write(data)

    @contextmanager
    def view(self) -> Iterator[bytes | mmap.mmap]:
        if self.file is None:
            yield bytes(self.memory)
            return
        self.file.flush()
        with mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped

    def __enter__(self) -> _Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _parsed(data: bytes | mmap.mmap, offset: int, syntax: str) -> tuple[Dataset, int | None]:
    """The indexed attributes and the Pixel Data length field of the dataset from
    ``offset`` to the end of ``data``, once every element of it is found within the
    stream (PS3.5 7.1).

    Raises:
        IngestRefused: 0xC000, it is malformed.
    """
    try:
        check_dataset(data, offset, Encoding.of(syntax))
        return header_and_pixel_data_length(data, offset, syntax, _INDEXED_TAGS)
    except (ValueError, RecursionError) as exc:
        raise IngestRefused(CANNOT_UNDERSTAND, "the dataset is malformed", str(exc)) from None


def _canonical_request(item: Received) -> Received:
    """``item`` with the canonical UIDs of its request.

    Raises:
        IngestRefused: 0xA900, a UID of the request is not valid.
    """
    def canonical(value: str, name: str) -> str:
        uid = canonical_uid(value)
        if uid is None:
            raise IngestRefused(DATASET_DOES_NOT_MATCH_SOP_CLASS, f"the request's {name} is not a valid UID",
                                f"{value[:80]!r}")
        return uid

    return replace(item, sop_class_uid=canonical(item.sop_class_uid, "SOP Class UID"),
                   sop_instance_uid=canonical(item.sop_instance_uid, "SOP Instance UID"),
                   transfer_syntax=canonical(item.transfer_syntax, "Transfer Syntax UID"))


def _placed(uids: dict[str, str]) -> dict[str, str]:
    return {"study_uid": uids["StudyInstanceUID"], "series_uid": uids["SeriesInstanceUID"]}


def _checked(header: Dataset, item: Received, pixel_data_length: int | None) -> dict[str, str]:
    """The canonical UIDs that place the file, once the dataset is found to be what the
    request says, with valid UIDs and Pixel Data its transfer syntax can hold.

    Raises:
        IngestRefused: 0xA900 or 0xC000, with the reason.
    """
    values = {keyword: _text(header, keyword) for keyword, _ in HIERARCHY_UIDS}
    if not values["StudyInstanceUID"] or not values["SeriesInstanceUID"]:
        raise IngestRefused(CANNOT_UNDERSTAND, "the dataset has no Study or Series Instance UID")
    uids = {}
    for keyword, name in HIERARCHY_UIDS:
        uid = canonical_uid(values[keyword])
        if uid is None:
            raise IngestRefused(DATASET_DOES_NOT_MATCH_SOP_CLASS, f"{name} is not a valid UID (PS3.5 9.1)",
                                f"{values[keyword][:80]!r}")
        uids[keyword] = uid
    if uids["SOPClassUID"] != item.sop_class_uid:
        raise IngestRefused(DATASET_DOES_NOT_MATCH_SOP_CLASS, "the SOP Class UID is not the request's",
                            f"{uids['SOPClassUID']}, not {item.sop_class_uid}")
    if uids["SOPInstanceUID"] != item.sop_instance_uid:
        raise IngestRefused(CANNOT_UNDERSTAND, "the SOP Instance UID is not the request's",
                            f"{uids['SOPInstanceUID']}, not {item.sop_instance_uid}")
    if pixel_data_length == UNDEFINED and item.transfer_syntax in NATIVE_SYNTAXES:
        raise IngestRefused(DATASET_DOES_NOT_MATCH_SOP_CLASS, "encapsulated Pixel Data under a native syntax",
                            f"transfer syntax {item.transfer_syntax} (PS3.5 A.4)")
    return uids


def _text(header: Dataset, keyword: str) -> str:
    """The value of a top-level text element as it was encoded (padding included),
    without pydicom's conversions; empty when absent."""
    tag = tag_for_keyword(keyword)
    element = header.get_item(tag) if tag is not None else None
    if element is None:
        return ""
    value = element.value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return "" if value is None else str(value)


def _shown(text: str) -> str:
    """A peer's string as the log shows it: quoted and escaped unless plain."""
    return text if text.isascii() and text.isprintable() else repr(text[:80])


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
