"""``multipart/related`` bodies (RFC 2387 over RFC 2046 5.1), read and written in chunks.

PS3.18 8.6.1.2 carries DICOM instances, frames and bulk data in ``multipart/related``
messages. The reader scans a seekable stream (a STOW-RS request body spooled to a file)
once, chunk by chunk, and returns where each part's body lies, so a caller then reads
one part at a time and a whole message never sits in memory; a message without its
closing delimiter is rejected before any part is used. The parser itself does no I/O: it
asks for the next chunk (:data:`MORE`), so that a blocking stream (:func:`iter_parts`)
and an asynchronous one (:func:`aiter_parts`, an ``httpx.AsyncClient`` response) share
it. The writer produces a message from parts that are themselves iterators of chunks
(files read from disk).
"""

from __future__ import annotations

import io
import re
import tempfile
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, TypeVar

CRLF = b"\r\n"


class Readable(Protocol):
    """What a multipart reader reads from: ``read(size)`` returns up to ``size`` bytes, fewer
    only at the end (a file, or an HTTP response body read once)."""

    def read(self, size: int = -1, /) -> bytes: ...


T = TypeVar("T")
CHUNK_SIZE = 1 << 20
MAX_HEADER_BYTES = 16 << 10
MAX_PADDING_BYTES = 1024
SPOOL_AFTER = 32 << 20
MORE = object()
"""What the parser yields when it needs the next chunk of the message (sent back to it;
``b""`` at the end)."""
_END = object()
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")


class MultipartError(ValueError):
    """A malformed ``multipart`` body: no opening or closing delimiter, bad part headers."""


@dataclass(frozen=True)
class PartSpan:
    """One body part: its headers (names lower-cased) and where its body lies.

    Attributes:
        headers: the part's header fields, by lower-case name.
        start: the offset of the body's first byte in the stream.
        end: the offset just past the body's last byte.
    """

    headers: dict[str, str] = field(default_factory=dict)
    start: int = 0
    end: int = 0

    @property
    def size(self) -> int:
        """The body's length in bytes."""
        return self.end - self.start

    @property
    def content_type(self) -> str:
        """The part's Content-Type (empty when it has none)."""
        return self.headers.get("content-type", "")


def check_boundary(boundary: str) -> bytes:
    """The boundary as bytes, checked against RFC 2046 5.1.1 (1 to 70 characters of a
    restricted set, no trailing space).

    Raises:
        MultipartError: not a valid boundary.
    """
    if not _BOUNDARY.match(boundary):
        raise MultipartError(f"invalid multipart boundary {boundary[:80]!r}")
    return boundary.encode("ascii")


def scan_parts(stream: BinaryIO, boundary: str, *, chunk_size: int = CHUNK_SIZE) -> list[PartSpan]:
    """Every body part of the ``multipart`` message in ``stream`` (from its current
    position), in order. The preamble and the epilogue are ignored. Offsets are
    relative to the stream's position on entry.

    A delimiter is CRLF ``--boundary`` (RFC 2046 5.1.1); the opening one may also start
    the stream. Boundary bytes inside a part that do not form a delimiter, followed by
    ``--`` or by optional white space and CRLF, are data.

    Raises:
        MultipartError: no opening delimiter, no closing delimiter (a truncated
            message), part headers that are too long or malformed, a bad boundary.
    """
    return list(_read_from(stream, chunk_size, _spans(boundary)))


def _spans(boundary: str) -> Generator[object, bytes, None]:
    scanner = _Scanner()
    delimiter = yield from _opening(scanner, boundary)
    number = 0
    while (part := (yield from _next_part(scanner, delimiter, number + 1))) is not None:
        number += 1
        headers, body_start, body_end = part
        yield PartSpan(headers, body_start - 2, body_end - 2)
    yield _END


def iter_parts(stream: Readable, boundary: str, *, chunk_size: int = 256 << 10,
               spool_after: int | None = None) -> Iterator[tuple[dict[str, str], bytes | BinaryIO]]:
    """The body parts of the ``multipart`` message in ``stream``, read once from start to
    end (an HTTP response as it arrives): each part's headers and body are yielded as
    soon as the delimiter after it is read. A body of up to ``spool_after`` bytes
    (:data:`SPOOL_AFTER` by default) is held in memory and yielded as bytes; a larger one
    goes on into a temporary file as it arrives and is yielded as that file, positioned
    at its start and closed when the next part is asked for. The rules are those of
    :func:`scan_parts`.

    Raises:
        MultipartError: as :func:`scan_parts`, when the bad part is reached (the parts
            before it have been yielded).
    """
    return _read_from(stream, chunk_size, _parts(boundary, spool_after))


async def aiter_parts(chunks: AsyncIterator[bytes], boundary: str, *, spool_after: int | None = None
                      ) -> AsyncGenerator[tuple[dict[str, str], bytes | BinaryIO], None]:
    """As :func:`iter_parts`, the message read from ``chunks`` as they arrive (an
    ``httpx.AsyncClient`` response's ``aiter_bytes()``): the same parser, the same bounds.

    Raises:
        MultipartError: as :func:`iter_parts`.
    """
    with closing(_parts(boundary, spool_after)) as steps:
        chunk: bytes | None = None
        while (item := steps.send(chunk)) is not _END:  # type: ignore[arg-type]
            chunk = await anext(chunks, b"") if item is MORE else (yield item)  # type: ignore[misc]


def _read_from(stream: Readable, chunk_size: int, steps: Generator[object, bytes, None]) -> Iterator[T]:
    """The items ``steps`` yields, fed ``chunk_size`` bytes of ``stream`` whenever it asks."""
    size = max(chunk_size, 1)
    with closing(steps):
        chunk: bytes | None = None
        while (item := steps.send(chunk)) is not _END:  # type: ignore[arg-type]
            chunk = stream.read(size) if item is MORE else (yield item)  # type: ignore[misc]


def _parts(boundary: str, spool_after: int | None) -> Generator[object, bytes, None]:
    scanner = _Scanner(SPOOL_AFTER if spool_after is None else spool_after)
    delimiter = yield from _opening(scanner, boundary)
    number = 0
    try:
        while True:
            number += 1
            part = yield from _next_part(scanner, delimiter, number, keep_body=True)
            if part is None:
                yield _END
                return
            headers, body_start, body_end = part
            spool, kept_from = scanner.spool, scanner.keep if scanner.keep is not None else body_start
            data = yield from scanner.read(kept_from, body_end - kept_from)
            body: bytes | BinaryIO = data
            if spool is not None:
                spool.write(data)
                spool.seek(0)
                body = spool
            scanner.keep = scanner.spool = None
            try:
                yield headers, body
            finally:
                if spool is not None:
                    spool.close()
    finally:
        if scanner.spool is not None:
            scanner.spool.close()


def _opening(scanner: _Scanner, boundary: str) -> Generator[object, bytes, bytes]:
    delimiter = CRLF + b"--" + check_boundary(boundary)
    scanner.position = yield from scanner.next_delimiter(delimiter, 0)
    if scanner.position < 0:
        raise MultipartError("no multipart boundary delimiter found in the body")
    return delimiter


def _next_part(scanner: _Scanner, delimiter: bytes, number: int, *, keep_body: bool = False
               ) -> Generator[object, bytes, tuple[dict[str, str], int, int] | None]:
    """The headers and body offsets of the part after the delimiter at
    ``scanner.position``, which moves to the next delimiter; None after the closing one."""
    after = scanner.position + len(delimiter)
    if (yield from scanner.read(after, 2)) == b"--":
        return None
    line_end = yield from scanner.find(CRLF, after, limit=MAX_PADDING_BYTES)
    if (yield from scanner.read(line_end + 2, 2)) == CRLF:
        headers, body_start = {}, line_end + 4
    else:
        headers_end = yield from scanner.find(CRLF + CRLF, line_end + 2, limit=MAX_HEADER_BYTES)
        if headers_end < 0:
            raise MultipartError(f"part {number}: headers not ended by an empty line")
        headers = _parse_headers((yield from scanner.read(line_end + 2, headers_end - line_end - 2)), number)
        body_start = headers_end + 4
    if keep_body:
        scanner.keep = body_start
    scanner.position = yield from scanner.next_delimiter(delimiter, body_start)
    if scanner.position < 0:
        raise MultipartError(f"part {number} is not followed by a boundary delimiter: "
                             "the body is truncated or has no closing delimiter")
    return headers, body_start, scanner.position


def read_part(stream: BinaryIO, part: PartSpan, origin: int = 0) -> bytes:
    """The body of ``part`` in ``stream`` (whose message started at ``origin``)."""
    stream.seek(origin + part.start)
    return stream.read(part.size)


class PartWindow(io.RawIOBase):
    """The ``size`` bytes of ``stream`` from ``start`` on, as a file of their own
    (readable, seekable): one part of a spooled message, read without copying it."""

    def __init__(self, stream: BinaryIO, start: int, size: int) -> None:
        super().__init__()
        self.stream = stream
        self.start = start
        self.size = size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        left = max(0, self.size - self.position)
        count = left if size is None or size < 0 else min(size, left)
        if not count:
            return b""
        self.stream.seek(self.start + self.position)
        data = self.stream.read(count)
        self.position += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def new_boundary() -> str:
    """A fresh random boundary."""
    return uuid.uuid4().hex


def write_parts(parts: Iterable[tuple[str, Iterable[bytes]]], boundary: str) -> Iterator[bytes]:
    """The chunks of a ``multipart`` message (PS3.18 8.6.1.2) holding ``parts``, each a
    Content-Type and the chunks of its body, read only as the message is sent."""
    opening = b"--" + boundary.encode("ascii") + CRLF
    for content_type, chunks in parts:
        yield opening + b"Content-Type: " + content_type.encode("ascii") + CRLF + CRLF
        yield from chunks
        yield CRLF
    yield b"--" + boundary.encode("ascii") + b"--" + CRLF


def coalesced(chunks: Iterable[bytes], size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """``chunks`` joined into pieces of about ``size`` bytes: a response made of many small
    parts is then sent in few writes (each piece a hop to the event loop), while memory
    stays bounded by ``size`` plus one chunk."""
    pending: list[bytes] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)


def file_chunks(path: object, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The bytes of the file at ``path``, ``chunk_size`` at a time."""
    with open(path, "rb") as fh:  # type: ignore[call-overload]
        while chunk := fh.read(chunk_size):
            yield chunk


def _parse_headers(raw: bytes, number: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = ""
    for line in raw.decode("latin-1").split("\r\n"):
        if line[:1] in (" ", "\t") and last:
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or name != name.strip():
            raise MultipartError(f"part {number}: malformed header line {line[:80]!r}")
        last = name.strip().lower()
        headers[last] = value.strip()
    return headers


class _Scanner:
    """A forward-only window on a message fed chunk by chunk, seen as if it started with CRLF (so that an
    opening delimiter at the very start is found like any other). Offsets given and
    returned are those of that virtual stream, which are the real ones plus 2. Bytes
    from ``keep`` on are kept until it is cleared; ``position`` is the last delimiter's."""

    def __init__(self, spool_after: int | None = None) -> None:
        self.buffer = bytearray(CRLF)
        self.base = 0
        self.eof = False
        self.position = 0
        self.keep: int | None = None
        self.spool_after = spool_after
        self.spool: BinaryIO | None = None

    def _fill(self) -> Generator[object, bytes, bool]:
        if self.eof:
            return False
        chunk = yield MORE
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def _drop_before(self, position: int) -> None:
        if self.keep is not None:
            self._spool_before(position)
            position = min(position, self.keep)
        cut = position - self.base
        if cut > 0:
            del self.buffer[:cut]
            self.base = position

    def _spool_before(self, position: int) -> None:
        """Once the body being kept is known to be longer than ``spool_after`` bytes, move
        its bytes before ``position`` (passed over: no delimiter there) to :attr:`spool`,
        a temporary file."""
        assert self.keep is not None
        if self.spool is None:
            if self.spool_after is None or position - self.keep <= self.spool_after:
                return
            self.spool = tempfile.TemporaryFile(prefix="pacskit-part-")  # noqa: SIM115 - closed by iter_parts
        if position > self.keep:
            self.spool.write(self.buffer[self.keep - self.base:position - self.base])
            self.keep = position

    def find(self, pattern: bytes, position: int, *, limit: int | None = None) -> Generator[object, bytes, int]:
        """The offset of the next ``pattern`` at or after ``position``; -1 if none (or
        none within ``limit`` bytes). An unlimited search lets go of the bytes it has
        passed; a limited one keeps them, to be read. Each chunk that comes is searched
        from where the last search could not have missed a match: a part kept whole is
        scanned once, not once per chunk."""
        start = position
        while True:
            found = self.buffer.find(pattern, max(start - self.base, 0))
            if found >= 0:
                where = self.base + found
                return where if limit is None or where - position <= limit else -1
            end = self.base + len(self.buffer)
            if limit is not None and end - position > limit + len(pattern):
                return -1
            start = max(start, end - len(pattern) + 1)
            if limit is None:
                self._drop_before(start)
            if not (yield from self._fill()):
                return -1

    def read(self, position: int, size: int) -> Generator[object, bytes, bytes]:
        """Up to ``size`` bytes at ``position`` (fewer at the end of the stream)."""
        while self.base + len(self.buffer) < position + size and (yield from self._fill()):
            pass
        start = position - self.base
        return bytes(self.buffer[start:start + size])

    def next_delimiter(self, delimiter: bytes, position: int) -> Generator[object, bytes, int]:
        """The next occurrence of ``delimiter`` that is one (RFC 2046 5.1.1: followed by
        ``--``, or by optional white space and CRLF); -1 if there is none."""
        while True:
            found = yield from self.find(delimiter, position)
            if found < 0:
                return -1
            after = found + len(delimiter)
            tail = yield from self.read(after, MAX_PADDING_BYTES + 2)
            if tail.startswith(b"--") or tail.lstrip(b" \t").startswith(CRLF):
                self._drop_before(found)
                return found
            position = found + 1
