"""Inflating Deflated Explicit VR Little Endian datasets (PS3.5 A.5) within a bound.

A deflated dataset may inflate to a thousand times its size: 400 KB becomes 400 MiB. Every
inflate in pacskit goes through here, streaming (``zlib.decompressobj`` with
``max_length``), so that no more than the bound is ever produced, and refuses what would
go beyond it with :class:`InflationLimitExceeded`.

The bounds (docs/hostile-data.md):

- an identifier (C-FIND, C-GET, C-MOVE requests and responses) inflates to at most
  :data:`IDENTIFIER_LIMIT`, the size a plain identifier may have;
- an instance inflates to at most :func:`instance_limit` of its compressed size:
  :data:`INSTANCE_RATIO` times it, never less than :data:`INSTANCE_FLOOR` (a blank
  image deflates a thousandfold and is no attack) and never more than
  :data:`INSTANCE_CAP`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Protocol

CHUNK = 1 << 20
IDENTIFIER_LIMIT = 16 << 20
INSTANCE_FLOOR = 64 << 20
INSTANCE_RATIO = 64
INSTANCE_CAP = 2 << 30
HEAD = 4 << 20
"""How much of an inflated instance is kept to read its header from."""


class Readable(Protocol):
    """Where compressed bytes are read from: a binary file, say."""

    def read(self, size: int, /) -> bytes | memoryview: ...


class InflationLimitExceeded(ValueError):
    """A deflated dataset would inflate to more than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the deflated dataset inflates to more than {limit} bytes, pacskit's limit")
        self.limit = limit


class Inflated:
    """What :func:`inflate_head` found: the first bytes of the inflated dataset, and its
    whole size."""

    def __init__(self, head: bytes, size: int) -> None:
        self.head = head
        self.size = size

    @property
    def whole(self) -> bool:
        """Whether ``head`` is the whole inflated dataset."""
        return len(self.head) == self.size


def instance_limit(compressed: int) -> int:
    """The most a deflated instance of ``compressed`` bytes may inflate to."""
    return min(INSTANCE_CAP, max(INSTANCE_FLOOR, INSTANCE_RATIO * compressed))


def inflate(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    """The inflated bytes of the raw deflate stream ``data`` (PS3.5 A.5: RFC 1951, no
    zlib header).

    Raises:
        InflationLimitExceeded: they would be more than ``limit`` bytes.
        ValueError: ``data`` is not a whole deflate stream.
    """
    out = bytearray()
    inflate_into(_Chunks(memoryview(data)), limit, out.extend)
    return bytes(out)


def inflate_head(source: Readable, limit: int, head: int = HEAD) -> Inflated:
    """Inflate the deflate stream read from ``source`` to its end, keeping only its
    first ``head`` bytes and counting the rest.

    Raises:
        InflationLimitExceeded: it inflates to more than ``limit`` bytes.
        ValueError: what is read is not a whole deflate stream.
    """
    kept = bytearray()

    def keep(piece: bytes) -> None:
        if len(kept) < head:
            kept.extend(piece[:head - len(kept)])

    size = inflate_into(source, limit, keep)
    return Inflated(bytes(kept), size)


def inflate_into(source: Readable, limit: int, write: Callable[[bytes], object]) -> int:
    """Inflate the deflate stream read from ``source``, handing the output to ``write``
    in pieces of at most :data:`CHUNK` bytes; its size.

    Raises:
        InflationLimitExceeded: it inflates to more than ``limit`` bytes (what was
            written before is at most ``limit`` bytes).
        ValueError: what is read is not a whole deflate stream.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    size = 0

    def take(piece: bytes) -> None:
        nonlocal size
        size += len(piece)
        if size > limit:
            raise InflationLimitExceeded(limit)
        if piece:
            write(piece)

    try:
        while not inflater.eof and (chunk := source.read(CHUNK)):
            pending = chunk
            while True:
                piece = inflater.decompress(pending, CHUNK)
                take(piece)
                pending = inflater.unconsumed_tail
                if not pending and len(piece) < CHUNK:
                    break
        take(inflater.flush())
    except zlib.error as exc:
        raise ValueError(f"not a deflate stream ({exc})") from None
    if not inflater.eof:
        raise ValueError("the deflate stream is truncated")
    return size


class _Chunks:
    """Bytes read as a file, without copying them."""

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.pos = 0

    def read(self, size: int) -> memoryview:
        piece = self.view[self.pos:self.pos + size]
        self.pos += len(piece)
        return piece
