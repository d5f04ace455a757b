"""Finding the DICOM files to work on under paths given by the user."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from pacskit.errors import InputError

FILTER_KEYWORDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True)
class DicomFile:
    """A DICOM Part 10 file: its SOP class and instance, transfer syntax, size and where
    its dataset starts."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    size: int
    dataset_offset: int


@dataclass
class ScanResult:
    """The DICOM files found, and what was passed over."""

    files: list[DicomFile]
    not_dicom: int = 0
    filtered_out: int = 0


def iter_paths(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Every file under ``paths`` (folders recursively, in a stable order).

    Raises:
        InputError: a path does not exist.
    """
    for path in map(Path, paths):
        if path.is_dir():
            for folder, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    yield Path(folder) / name
        elif path.is_file():
            yield path
        else:
            raise InputError(f"{path} does not exist")


def scan(paths: Iterable[Path | str], *, patient_id: str | None = None,
         study_uid: str | None = None, series_uid: str | None = None) -> ScanResult:
    """The DICOM Part 10 files under ``paths``, optionally only those of one patient,
    study or series. Reads the file meta information of each file, and its first
    attributes only when a filter needs them.

    Raises:
        InputError: a path does not exist.
    """
    wanted = {k: v for k, v in zip(FILTER_KEYWORDS, (patient_id, study_uid, series_uid), strict=True) if v}
    result = ScanResult(files=[])
    for path in iter_paths(paths):
        try:
            item = read_file(path)
        except (InvalidDicomError, OSError, ValueError, struct.error):
            result.not_dicom += 1
            continue
        if wanted and not _matches(path, wanted):
            result.filtered_out += 1
            continue
        result.files.append(item)
    return result


def read_file(path: Path) -> DicomFile:
    """Describe a DICOM Part 10 file from its file meta information (PS3.10 7.1: group
    0002, Explicit VR Little Endian, after a 128-byte preamble and ``DICM``), and the SOP
    Class and Instance UIDs from the dataset itself, which win over the file meta
    information when the two disagree (a peer checks the dataset against the request).

    Raises:
        InvalidDicomError: no ``DICM`` prefix, or malformed file meta information.
    """
    with path.open("rb") as fh:
        head = fh.read(HEAD_SIZE)
        size = os.fstat(fh.fileno()).st_size
        if head[128:132] != b"DICM":
            raise InvalidDicomError(f"{path} has no DICM prefix")
        meta, offset = _parse_meta(head, 132, complete=size <= len(head))
        if offset is None:
            fh.seek(0)
            head = fh.read()
            meta, offset = _parse_meta(head, 132, complete=True)
    if offset is None:
        raise InvalidDicomError(f"{path}: truncated file meta information")
    try:
        sop_class, sop_instance, syntax = meta[0x0002], meta[0x0003], meta[0x0010]
    except KeyError as exc:
        raise InvalidDicomError(f"{path}: file meta information lacks {exc}") from None
    in_dataset = _dataset_uids(head, offset, syntax)
    if in_dataset is None:
        try:
            ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"])
        except Exception as exc:  # noqa: BLE001 - whatever pydicom cannot read is not DICOM here
            raise InvalidDicomError(f"{path}: unreadable dataset ({exc})") from None
        in_dataset = (ds.get("SOPClassUID"), ds.get("SOPInstanceUID"))
    return DicomFile(path, str(in_dataset[0] or sop_class), str(in_dataset[1] or sop_instance),
                     syntax, size, offset)


HEAD_SIZE = 4096
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_IMPLICIT = "1.2.840.10008.1.2"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_DEFLATED = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"}
_SOP_CLASS_UID = 0x00080016
_SOP_INSTANCE_UID = 0x00080018


def _elements(data: bytes, pos: int, last_tag: int, *, explicit: bool = True, little: bool = True
              ) -> tuple[dict[int, bytes], int, bool]:
    """The values of the elements from ``pos`` up to ``last_tag``, by tag; where they
    end; and whether a later tag was reached (False: ``data`` ended, or an undefined
    length was met, first)."""
    order = "<" if little else ">"
    values: dict[int, bytes] = {}
    while pos + 8 <= len(data):
        group, element = struct.unpack_from(order + "HH", data, pos)
        tag = (group << 16) | element
        if tag > last_tag:
            return values, pos, True
        vr = data[pos + 4:pos + 6] if explicit else b""
        if explicit and vr in _LONG_VRS:
            if pos + 12 > len(data):
                break
            length, start = struct.unpack_from(order + "I", data, pos + 8)[0], pos + 12
        elif explicit:
            length, start = struct.unpack_from(order + "H", data, pos + 6)[0], pos + 8
        else:
            length, start = struct.unpack_from(order + "I", data, pos + 4)[0], pos + 8
        if length == 0xFFFFFFFF or start + length > len(data):
            break
        values[tag] = data[start:start + length]
        pos = start + length
    return values, pos, False


def _parse_meta(data: bytes, pos: int, *, complete: bool) -> tuple[dict[int, str], int | None]:
    """The values of group 0002 by element number, and the dataset's offset: None if
    ``data`` ends inside the group, or may (it is not the ``complete`` file)."""
    values, end, finished = _elements(data, pos, 0x0002FFFF)
    meta = {tag & 0xFFFF: _text(value) for tag, value in values.items()}
    if finished or (complete and end == len(data)):
        return meta, end
    return meta, None


def _dataset_uids(data: bytes, pos: int, syntax: str) -> tuple[str | None, str | None] | None:
    """SOP Class and Instance UIDs from the dataset at ``pos`` of ``data``; None when they
    cannot be read from these bytes alone (deflated, undefined lengths, too short)."""
    if syntax in _DEFLATED:
        return None
    values, _, finished = _elements(data, pos, _SOP_INSTANCE_UID, explicit=syntax != _IMPLICIT,
                                    little=syntax != _BIG_ENDIAN)
    if not finished:
        return None
    uids = [values.get(tag) for tag in (_SOP_CLASS_UID, _SOP_INSTANCE_UID)]
    return tuple(_text(u) if u is not None else None for u in uids)  # type: ignore[return-value]


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0 ").decode("ascii", "replace")


def _matches(path: Path, wanted: dict[str, str]) -> bool:
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=list(wanted))
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return False
    return all(str(ds.get(k, "")) == v for k, v in wanted.items())
