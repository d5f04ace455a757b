"""Writing instances into a folder: atomically, under a layout, with patient names withheld.

Every write goes to a temporary file beside its target and is renamed into place, so a
crash, a full disk or an aborted transfer leaves either the whole file or nothing.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pydicom import Dataset, dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import dcmwrite

from pacskit.encoded import (
    SPECIFIC_CHARACTER_SET,
    Encoding,
    HeaderValues,
    blanked_parts,
    dataset_encoding,
    header_elements,
    pixel_data_end,
    pixel_data_offset,
    tag_patterns,
)
from pacskit.errors import DiskFull, OutputError
from pacskit.layout import Layout, join_name
from pacskit.name_walk import contains_names
from pacskit.placement import Placements, is_uid
from pacskit.privacy import DEFAULT_PRIVACY, PATIENT_NAME_TAGS, PrivacyPolicy

if TYPE_CHECKING:
    from pacskit.deid import Deidentifier

SPOOLED_HEAD = 4 << 20
COPY_CHUNK = 1 << 20
_IOV_MAX = 1024
Pieces = Sequence[bytes | memoryview]
"""An instance's bytes as pieces written one after the other (names blanked without a copy)."""


@dataclass(frozen=True)
class WrittenInstance:
    """What a write did.

    Attributes:
        path: where the instance is (or already was).
        sop_instance_uid: the instance written.
        skipped: ``True`` when the file was already there and ``overwrite`` was off.
        size: bytes written (0 when skipped).
    """

    path: Path
    sop_instance_uid: str
    skipped: bool
    size: int


class FolderSink:
    """A folder that instances are written into.

    Two instances never overwrite each other: under a layout without
    ``{SOPInstanceUID}``, an instance whose path holds another goes to ``name-2.ext``,
    ``name-3.ext``... (:mod:`pacskit.placement`).

    Args:
        root: the output folder (created if missing).
        layout: where under ``root`` each instance goes.
        overwrite: replace the file that holds the same instance; by default it is kept
            and the instance skipped.
        privacy: the patient-name policy applied to every written instance and to the
            layout.
        fsync: flush each file to disk before renaming it into place.
        deidentifier: de-identifies every instance before it is written
            (:mod:`pacskit.deid`): in its bytes when :func:`~pacskit.deid.encoded.deidentify_encoded`
            can, else decoded by pydicom, changed and re-encoded in its own transfer
            syntax; without it instances are written as received.

    Raises:
        UsageError: the layout has a patient-name field that ``privacy`` withholds.
    """

    def __init__(
        self,
        root: Path | str,
        layout: Layout | None = None,
        *,
        overwrite: bool = False,
        privacy: PrivacyPolicy = DEFAULT_PRIVACY,
        fsync: bool = False,
        deidentifier: Deidentifier | None = None,
    ) -> None:
        self.root = Path(root)
        self.layout = layout or Layout()
        self.overwrite = overwrite
        self.privacy = privacy
        self.fsync = fsync
        self.deidentifier = deidentifier
        self._folders: set[str] = set()
        self._folder_paths: dict[str, Path] = {}
        self._serial = itertools.count()
        self._placements = Placements()
        privacy.check_layout(self.layout)
        needed = [tag_for_keyword(k) for k in (*self.layout.fields, "SOPInstanceUID")]
        self._wanted = frozenset((SPECIFIC_CHARACTER_SET, *PATIENT_NAME_TAGS, *(t for t in needed if t)))
        self._last_tag = max(self._wanted)

    def prepare(self) -> None:
        """Create the folder and prove it is writable.

        Raises:
            OutputError: it cannot be created or written.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".pacskit-probe-"):
                pass
        except OSError as exc:
            raise OutputError(f"cannot write to {self.root}: {exc.strerror or exc}") from None

    def path_for(self, values: Dataset | dict[str, object]) -> Path:
        """Where an instance with these attributes goes."""
        return self.layout.path_in(self.root, values)

    def write_encoded(self, data: bytes | BinaryIO) -> WrittenInstance:
        """Write a DICOM Part 10 instance (preamble, file meta, dataset) as received:
        bytes, or a file positioned at its start (a large instance spooled to disk).

        The bytes are written unchanged unless the privacy policy must blank a name:
        then the name elements are emptied in the bytes, or, when a name may be nested
        in a sequence (or a UN element holding one), the dataset is decoded, blanked and
        re-encoded in its own transfer syntax (pixel data is never decoded). From a
        file, only the elements before the pixel data are held in memory, unless a name
        must be looked for inside a sequence.

        Raises:
            OutputError: not DICOM, or the file cannot be written.
            DiskFull: no space left.
        """
        if self.deidentifier is not None:
            changed = self._deidentified(data)
            if isinstance(changed, WrittenInstance):
                return changed
            data = changed
        if not isinstance(data, bytes | bytearray):
            return self._write_spooled(data)
        fast = _read_encoded(data, self.privacy, self._last_tag, self._wanted)
        if fast is not None:
            values, patched = fast
            return self._write(self._locate(values), str(values.get("SOPInstanceUID", "")), patched)
        dataset = _decoded(data)
        if self.privacy.withholds_names and contains_names(dataset):
            return self.write_dataset(dataset)
        return self._write(self._locate(dataset), str(dataset.SOPInstanceUID), [data])

    def _deidentified(self, data: bytes | BinaryIO) -> bytes | WrittenInstance:
        """The instance de-identified in its bytes, or written by the pydicom path."""
        from pacskit.deid.encoded import deidentify_encoded

        assert self.deidentifier is not None
        if not isinstance(data, bytes | bytearray):
            data.seek(0)
            data = data.read()
        changed = deidentify_encoded(bytes(data), self.deidentifier)
        if changed is not None:
            return changed
        dataset = _decoded(data)
        self.deidentifier(dataset)
        return self.write_dataset(dataset)

    def _write_spooled(self, source: BinaryIO) -> WrittenInstance:
        head = source.read(SPOOLED_HEAD)
        header = _header_before_pixel_data(head, source)
        fast = _read_encoded(header, self.privacy, self._last_tag, self._wanted) if header is not None else None
        if header is None or fast is None:
            source.seek(0)
            return self.write_encoded(source.read())
        values, patched = fast
        source.seek(len(header))
        return self._write(self._locate(values), str(values.get("SOPInstanceUID", "")), patched, source)

    def write_dataset(self, dataset: Dataset) -> WrittenInstance:
        """Encode and write a dataset that has file meta information.

        Raises:
            OutputError, DiskFull: as :meth:`write_encoded`.
        """
        if self.privacy.withholds_names:
            self.privacy.blank_instance(dataset)

        def encoded() -> Pieces:
            buffer = BytesIO()
            dcmwrite(buffer, dataset, enforce_file_format=True)
            return [buffer.getvalue()]

        return self._write(self._locate(dataset), str(dataset.SOPInstanceUID), encoded)

    def _locate(self, values: Dataset | HeaderValues) -> tuple[str, str]:
        return self.layout.locate(os.path.abspath(self.root), values)

    def _path(self, folder: str, name: str) -> Path:
        parent = self._folder_paths.get(folder)
        if parent is None:
            if len(self._folder_paths) >= MAX_REMEMBERED_FOLDERS:
                self._folder_paths.clear()
            parent = self._folder_paths[folder] = Path(folder)
        return parent / name

    def _write(self, located: tuple[str, str], uid: str, data: Pieces | Callable[[], Pieces],
               rest: BinaryIO | None = None) -> WrittenInstance:
        """The pieces ``data`` (or what it returns), then what is left of ``rest``, atomically into
        the file ``located`` (folder, name) — or, when the layout does not name the
        instance alone, into the file of that path that
        :class:`~pacskit.placement.Placements` gives it."""
        if not uid:
            raise OutputError("received data has no SOP Instance UID")
        folder, name = located
        target = self._path(folder, name)
        alone = self.layout.identifies_instances and is_uid(uid)
        if alone:
            place, present = target, _exists(join_name(folder, name))
        else:
            place, present = self._placements.find(target, uid)
        if present and not self.overwrite:
            return WrittenInstance(place, uid, True, 0)
        tmp: str | None = None
        try:
            tmp, size = self._temporary(folder, data() if callable(data) else data, rest)
            if not (alone or present):
                while not _claimed(tmp, place):
                    place, present = self._placements.taken(target, uid, place)
                    if present:
                        break
            if present and not self.overwrite:
                return WrittenInstance(place, uid, True, 0)
            if alone or present:
                os.replace(tmp, place)
                tmp = None
        except BaseException as exc:
            if not (alone or present):
                self._placements.release(target, uid, place)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise DiskFull(f"disk full while writing {place}") from None
            if isinstance(exc, OSError):
                raise OutputError(f"cannot write {place}: {exc.strerror or exc}") from None
            raise
        finally:
            if tmp is not None:
                _remove(tmp)
        return WrittenInstance(place, uid, False, size)

    def _temporary(self, folder: str, data: Pieces, rest: BinaryIO | None) -> tuple[str, int]:
        """A new hidden file in ``folder`` holding the pieces ``data`` and the rest of
        ``rest``, and its size."""
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        name = join_name(folder, f".pacskit-{os.getpid()}-{id(self):x}-{next(self._serial)}.part")
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                if rest is None:
                    size = _write_all(fd, data)
                else:
                    with os.fdopen(fd, "wb", closefd=False) as fh:
                        fh.writelines(data)
                        shutil.copyfileobj(rest, fh, COPY_CHUNK)
                        size = fh.tell()
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            _remove(name)
            raise
        return name, size


def _decoded(data: bytes) -> Dataset:
    """A received instance, decoded by pydicom.

    Raises:
        OutputError: it is not DICOM.
    """
    try:
        return dcmread(BytesIO(data))
    except (InvalidDicomError, EOFError) as exc:
        raise OutputError(f"received data is not a valid DICOM file: {exc}") from None
    except (ValueError, KeyError, struct.error) as exc:
        raise OutputError(f"received data is not a valid DICOM file ({type(exc).__name__})") from None


def _write_all(fd: int, pieces: Pieces) -> int:
    """The ``pieces`` one after the other into the file ``fd``, in one system call
    (``writev``) unless the kernel takes less; the bytes written."""
    views = [memoryview(piece) for piece in pieces if len(piece)]
    total = sum(len(view) for view in views)
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if written:
            views[0] = views[0][written:]
    return total


def _exists(path: str) -> bool:
    """:meth:`pathlib.Path.exists` of a path given as text."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno in _MISSING:
            return False
        raise
    return True


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})
MAX_REMEMBERED_FOLDERS = 4096


def _claimed(tmp: str, place: Path) -> bool:
    """Put the file ``tmp`` at ``place`` unless a file is there: by a hard link, which
    fails if one is, even one another process has just written; where the file system has
    no hard links (FAT), by a rename after looking. ``tmp`` itself is left to remove."""
    try:
        os.link(tmp, place)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    if os.path.lexists(place):
        return False
    os.rename(tmp, place)
    return True


_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS})


def _header_before_pixel_data(head: bytes, source: BinaryIO) -> bytes | None:
    """The bytes of a spooled instance before its Pixel Data, if ``head`` holds them and
    nothing after the pixel data could hold a patient name; None otherwise (the whole
    instance must then be read)."""
    found = dataset_encoding(head)
    if found is None:
        return None
    offset, encoding = found
    start = pixel_data_offset(head, offset, encoding)
    end = pixel_data_end(head, start, encoding, source) if start is not None else None
    if start is None or end is None or _names_from(source, end, encoding):
        return None
    return head[:start]


def _names_from(source: BinaryIO, position: int, encoding: Encoding) -> bool:
    """Whether the bytes of ``source`` from ``position`` on may hold a patient name
    (elements after the pixel data: a name could only hide in a sequence there)."""
    patterns = [pattern for tag in PATIENT_NAME_TAGS for pattern in tag_patterns(tag, encoding)]
    source.seek(position)
    carried = b""
    while chunk := source.read(COPY_CHUNK):
        window = carried + chunk
        if any(pattern in window for pattern in patterns):
            return True
        carried = window[-3:]
    return False


def _read_encoded(data: bytes, privacy: PrivacyPolicy, last_tag: int, wanted: frozenset[int]
                  ) -> tuple[HeaderValues, Pieces] | None:
    """The attributes ``wanted`` (the last of which is ``last_tag``) of a Part 10 byte
    string, and its bytes with names blanked (the pieces of :func:`blanked_parts`), read
    without decoding; None when only pydicom can do it (deflated, malformed, names nested
    in sequences)."""
    found = dataset_encoding(data)
    if found is None:
        return None
    offset, encoding = found
    try:
        elements = header_elements(data, offset, encoding, last_tag, wanted)
    except ValueError:
        return None
    patched = blanked_parts(data, offset, elements, encoding, PATIENT_NAME_TAGS) if privacy.withholds_names else [data]
    if patched is None:
        return None
    return HeaderValues(data, elements, encoding), patched


def names_withheld(data: bytes, privacy: PrivacyPolicy) -> bytes:
    """A Part 10 instance with the names ``privacy`` withholds blanked: in its bytes when
    they can be, else decoded, blanked and re-encoded in its own transfer syntax.

    Raises:
        OutputError: not DICOM.
    """
    if not privacy.withholds_names:
        return data
    wanted = frozenset((SPECIFIC_CHARACTER_SET, *PATIENT_NAME_TAGS))
    fast = _read_encoded(data, privacy, max(wanted), wanted)
    if fast is not None:
        pieces = fast[1]
        return data if len(pieces) == 1 else b"".join(pieces)
    dataset = _decoded(data)
    if not contains_names(dataset):
        return data
    privacy.blank_instance(dataset)
    buffer = BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()
