"""A ZIP archive (PKWARE APPNOTE 6.3) written as it is sent: stored files go in byte for
byte (method *stored*), each read a chunk at a time, and the archive is never whole in
memory or on disk. Python's :mod:`zipfile` writes to a stream that cannot seek by
putting each entry's CRC-32 and sizes in a data descriptor after its data; ZIP64 records
are written for entries of 4 GiB or more (their size is known from the file)."""

from __future__ import annotations

import contextlib
import io
import os
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pacskit.web.multipart import CHUNK_SIZE


@dataclass(frozen=True)
class Entry:
    """One member of the archive: its name in it, and either a file to copy or bytes."""

    name: str
    path: Path | None = None
    data: bytes = b""


class CutShort(Exception):
    """A member could not be read: the archive ends here, without its central directory."""


class _Pipe(io.RawIOBase):
    """A write-only stream whose bytes are taken as they come (it cannot seek)."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._pending.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def taken(self) -> Iterator[bytes]:
        """What was written since the last call, as one piece (none if nothing was)."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            yield data


def zip_chunks(entries: Iterable[Entry], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The bytes of a ZIP archive of ``entries``, in pieces of about ``chunk_size``.

    Entries are read only as the archive is sent. When one cannot be read (a file
    deleted meanwhile) :class:`CutShort` ends the stream before the central directory:
    what was sent is then a truncated archive that no unzip takes for whole.
    """
    pipe = _Pipe()
    archive = zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
    try:
        yield from _members(archive, pipe, entries, chunk_size)
    except OSError as exc:
        with contextlib.suppress(Exception):
            archive.close()  # what it writes now is never sent
        raise CutShort(f"{exc.strerror}: {exc.filename}") from None
    except BaseException:
        with contextlib.suppress(Exception):
            archive.close()  # what it writes now is never sent
        raise
    archive.close()
    yield from pipe.taken()


def _members(archive: zipfile.ZipFile, pipe: _Pipe, entries: Iterable[Entry], chunk_size: int) -> Iterator[bytes]:
    for entry in entries:
        if entry.path is None:
            info = zipfile.ZipInfo(entry.name, date_time=time.localtime()[:6])
            info.file_size = len(entry.data)
            with archive.open(info, "w") as member:
                member.write(entry.data)
        else:
            with entry.path.open("rb") as source:
                stat = os.fstat(source.fileno())
                info = zipfile.ZipInfo(entry.name, date_time=_zip_time(stat.st_mtime))
                info.file_size = stat.st_size
                with archive.open(info, "w") as member:
                    while chunk := source.read(chunk_size):
                        member.write(chunk)
                        yield from pipe.taken()
        yield from pipe.taken()


def _zip_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    stamp = time.localtime(mtime)[:6]
    return stamp if stamp[0] >= 1980 else (1980, 1, 1, 0, 0, 0)
