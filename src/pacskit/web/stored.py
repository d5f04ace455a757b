"""A stored instance opened for WADO-RS with no more of it in memory than the request uses.

Values longer than :data:`DEFERRED` bytes stay on disk until asked for (pydicom's
``defer_size``), so ``/metadata`` never reads a large private OB or the Pixel Data. A
Deflated Explicit VR Little Endian instance (PS3.5 A.5) cannot be read in part: pydicom
inflates all of it in memory, on every request (a 6 MB file inflating to 400 MiB cost
+494 MB per ``/metadata``). It is inflated here a chunk at a time into a Part 10 file in
the archive's ``tmp/`` — Explicit VR Little Endian, within the limit ingest applied
(:func:`~pacskit.deflate.instance_limit`) — read from there the same way, and removed when
the request is done.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydicom import Dataset, dcmread
from pydicom.filebase import DicomFileLike
from pydicom.filereader import read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian
from starlette.exceptions import HTTPException

from pacskit.deflate import InflationLimitExceeded, inflate_into, instance_limit
from pacskit.encoded import parse_file_meta
from pacskit.web.multipart import file_chunks

DEFERRED = 1024
"""Values longer than this are read from disk only when used."""

_META_PROBE = 1 << 16


@dataclass(frozen=True)
class StoredFiles:
    """Where :func:`opened` inflates a deflated instance: the archive's ``tmp/``
    (``scratch``), under its live ingest's file-name ``prefix``, so the start-up check
    leaves the file alone while the server runs and removes it after a crash."""

    scratch: Path
    prefix: str

    def open(self, path: Path, *, pixels: bool = False) -> AbstractContextManager[Dataset]:
        """:func:`opened` with this scratch folder."""
        return opened(path, self.scratch, self.prefix, pixels=pixels)

    def inflated_chunks(self, path: Path) -> Iterator[bytes]:
        """The deflated instance at ``path`` as a Part 10 file in Explicit VR Little
        Endian, a chunk at a time, inflated into this scratch folder when the first chunk
        is asked for; the file is removed when the last is sent or the response is
        abandoned."""
        with _inflated_file(path, self.scratch, self.prefix) as inflated:
            yield from file_chunks(inflated)


@contextmanager
def opened(path: Path, scratch: Path, prefix: str, *, pixels: bool = False) -> Iterator[Dataset]:
    """The instance stored at ``path``, without its Pixel Data unless ``pixels``; values
    over :data:`DEFERRED` bytes are read when accessed, within the ``with`` block.

    Args:
        scratch: where a deflated instance is inflated, under ``prefix``
            (see :class:`StoredFiles`).

    Raises:
        HTTPException: 500, a deflated instance that no longer inflates within its limit.
    """
    if read_file_meta_info(path).TransferSyntaxUID != DeflatedExplicitVRLittleEndian:
        yield dcmread(path, defer_size=DEFERRED, stop_before_pixels=not pixels)
        return
    with _inflated_file(path, scratch, prefix) as inflated:
        yield dcmread(inflated, defer_size=DEFERRED, stop_before_pixels=not pixels)


@contextmanager
def _inflated_file(path: Path, scratch: Path, prefix: str) -> Iterator[str]:
    descriptor, inflated = tempfile.mkstemp(dir=scratch, prefix=f"{prefix}wado-", suffix=".inflated")
    try:
        with os.fdopen(descriptor, "wb") as out:
            _write_inflated(path, out)
        yield inflated
    finally:
        os.unlink(inflated)


def _write_inflated(path: Path, out: BinaryIO) -> None:
    """Part 10 of the deflated instance at ``path`` in Explicit VR Little Endian to ``out``."""
    meta = read_file_meta_info(path)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(DicomFileLike(out), meta, enforce_standard=True)
    with open(path, "rb") as source:
        head = source.read(_META_PROBE)
        _, start = parse_file_meta(head, complete=len(head) < _META_PROBE)
        if start is None:
            raise HTTPException(500, "the stored instance's file meta information is too long to read")
        source.seek(start)
        limit = instance_limit(os.fstat(source.fileno()).st_size - start)
        try:
            inflate_into(source, limit, out.write)
        except InflationLimitExceeded:
            raise HTTPException(500, f"the stored instance inflates beyond {limit >> 20} MiB, the limit") from None

