"""The streaming multipart/related reader and writer (RFC 2046 5.1, PS3.18 8.6.1.2)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest

from pacskit.web.media import MediaType, parse_accept
from pacskit.web.multipart import (
    MultipartError,
    aiter_parts,
    coalesced,
    iter_parts,
    read_part,
    scan_parts,
    write_parts,
)

BOUNDARY = "b0und4ry"


def message(*bodies: bytes, boundary: str = BOUNDARY, preamble: bytes = b"", epilogue: bytes = b"",
            content_type: str = "application/dicom") -> bytes:
    out = preamble
    for body in bodies:
        out += f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + body + b"\r\n"
    return out + f"--{boundary}--".encode() + epilogue


def bodies(data: bytes, boundary: str = BOUNDARY, chunk_size: int = 1 << 20) -> list[bytes]:
    """The part bodies found by the seekable reader, checked against the one-pass reader."""
    stream = io.BytesIO(data)
    found = [read_part(stream, p) for p in scan_parts(io.BytesIO(data), boundary, chunk_size=chunk_size)]
    streamed = [body for _, body in iter_parts(io.BytesIO(data), boundary, chunk_size=chunk_size)]
    assert streamed == found
    assert asyncio.run(async_bodies(data, boundary, chunk_size)) == found
    return found


async def chunks_of(data: bytes, chunk_size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk_size):
        yield data[start:start + chunk_size]


async def async_bodies(data: bytes, boundary: str, chunk_size: int, spool_after: int | None = None) -> list:
    """The part bodies found by the asynchronous reader, a spooled one as ("file", its bytes)."""
    return [body if isinstance(body, bytes) else ("file", body.read())
            async for _, body in aiter_parts(chunks_of(data, chunk_size), boundary, spool_after=spool_after)]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 11, 64, 1 << 20])
def test_every_chunk_size_finds_the_same_parts(chunk_size):
    parts = [b"first", b"", b"x" * 1000 + b"\r\n--b0und4r", b"\r\n\r\nlast\r\n"]
    assert bodies(message(*parts, preamble=b"ignored\r\n", epilogue=b"\r\nignored too"),
                  chunk_size=chunk_size) == parts


def test_boundary_bytes_not_forming_a_delimiter_are_data():
    tricky = [b"--b0und4ry at the start", b"a\r\n--b0und4ryX not a delimiter", b"x--b0und4ry\r\n"]
    for chunk_size in (1, 4, 9, 1 << 20):
        assert bodies(message(*tricky), chunk_size=chunk_size) == tricky


def test_dicomweb_client_framing_and_transport_padding():
    data = (b"\r\n--b\r\nContent-Type: application/dicom\r\n\r\none"
            b"\r\n--b  \t\r\nContent-Type: application/dicom\r\n\r\ntwo\r\n--b--")
    assert bodies(data, "b") == [b"one", b"two"]


def test_headers_are_parsed_and_folded():
    data = (b"--b\r\ncontent-type: application/dicom;\r\n transfer-syntax=1.2.840.10008.1.2.1\r\n"
            b"Content-Location: x\r\n\r\nbody\r\n--b--\r\n")
    (part,) = scan_parts(io.BytesIO(data), "b", chunk_size=3)
    assert part.content_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    assert part.headers["content-location"] == "x"
    assert data[part.start:part.end] == b"body"


def test_a_part_without_headers():
    assert bodies(b"--b\r\n\r\nbare\r\n--b--", "b") == [b"bare"]


@pytest.mark.parametrize("data, reason", [
    (b"no delimiter at all", "no multipart boundary"),
    (message(b"one")[:-len(b"--b0und4ry--")], "not followed by a boundary"),
    (message(b"one")[:-2], "not followed by a boundary"),
    (b"--b0und4ry\r\nContent-Type: x\r\n" + b"y" * 100, "headers not ended"),
    (b"--b0und4ry\r\nnot a header\r\n\r\ndata\r\n--b0und4ry--", "malformed header"),
])
def test_malformed_messages(data, reason):
    for chunk_size in (1, 5, 1 << 20):
        with pytest.raises(MultipartError, match=reason):
            scan_parts(io.BytesIO(data), BOUNDARY, chunk_size=chunk_size)
        with pytest.raises(MultipartError, match=reason):
            list(iter_parts(io.BytesIO(data), BOUNDARY, chunk_size=chunk_size))


def test_the_one_pass_reader_yields_each_part_before_reading_the_next():
    data = message(b"first", b"x" * 5000 + b"second")
    stream = io.BytesIO(data)
    parts = iter_parts(stream, BOUNDARY, chunk_size=4)
    headers, body = next(parts)
    assert (headers, body) == ({"content-type": "application/dicom"}, b"first")
    assert stream.tell() < data.index(b"second")


def test_invalid_boundaries_are_refused():
    for boundary in ("", "x" * 71, "trailing ", "semi;colon"):
        with pytest.raises(MultipartError, match="invalid multipart boundary"):
            scan_parts(io.BytesIO(b""), boundary)


def test_a_large_part_is_scanned_in_bounded_memory():
    class Counting(io.BytesIO):
        def __init__(self, data: bytes) -> None:
            super().__init__(data)
            self.largest = 0

        def read(self, size: int | None = -1) -> bytes:
            chunk = super().read(size)
            self.largest = max(self.largest, len(chunk))
            return chunk

    big = bytes(range(256)) * 40000
    stream = Counting(message(big, b"small"))
    parts = scan_parts(stream, BOUNDARY, chunk_size=4096)
    assert [p.size for p in parts] == [len(big), 5] and stream.largest == 4096


def test_the_writer_round_trips_through_the_reader():
    parts = [("application/dicom", [b"ab", b"c"]), ("application/octet-stream", iter([b"", b"\r\n--xy"]))]
    data = b"".join(write_parts(parts, "x"))
    assert data.endswith(b"--x--\r\n")
    spans = scan_parts(io.BytesIO(data), "x", chunk_size=2)
    assert [data[s.start:s.end] for s in spans] == [b"abc", b"\r\n--xy"]
    assert [s.content_type for s in spans] == ["application/dicom", "application/octet-stream"]


def test_media_types_and_accept():
    media = MediaType.parse('multipart/related; type="application/dicom"; transfer-syntax=*; boundary="a;b"')
    assert media.type == "multipart/related" and media.params["boundary"] == "a;b"
    assert media.inner == MediaType("application/dicom", {"transfer-syntax": "*"})
    ranked = parse_accept('image/png;q=0.5, multipart/related; type="image/jpeg", image/x-jls;q=0')
    assert [m.type for m in ranked] == ["multipart/related", "image/png"]
    assert parse_accept(None) == [MediaType("*/*")]
    assert MediaType.parse("image/*").covers("image/jpeg") and not MediaType.parse("image/png").covers("image/jpeg")


def test_small_chunks_are_sent_in_few_pieces_of_bounded_size():
    chunks = [b"x" * 10] * 1000 + [b"y" * 5000]
    pieces = list(coalesced(chunks, size=1024))
    assert b"".join(pieces) == b"".join(chunks)
    assert len(pieces) < 20
    assert all(len(p) < 1024 + 5000 for p in pieces)


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 1 << 20])
def test_a_part_past_the_memory_limit_comes_as_a_file_with_the_same_bytes(chunk_size):
    near_misses = b"\r\n--b0und4r" + b"\r\n--b0und4ryX" + f"\r\n--{BOUNDARY} x".encode()
    big = bytes(range(256)) * 40 + near_misses + bytes(range(256)) * 40
    data = message(b"small", big, b"", big[::-1])
    got = []
    for _, body in iter_parts(io.BytesIO(data), BOUNDARY, chunk_size=chunk_size, spool_after=1000):
        got.append(body if isinstance(body, bytes) else ("file", body.read()))
    assert got == [b"small", ("file", big), b"", ("file", big[::-1])]
    assert asyncio.run(async_bodies(data, BOUNDARY, chunk_size, spool_after=1000)) == got


@pytest.mark.parametrize("chunk_size", [1, 7, 1 << 20])
def test_the_asynchronous_reader_rejects_a_truncated_message_after_its_whole_parts(chunk_size):
    data = message(b"one", b"two")[:-len(f"--{BOUNDARY}--") - 5]

    async def read() -> list[bytes]:
        got = []
        with pytest.raises(MultipartError, match="part 2"):
            async for _, body in aiter_parts(chunks_of(data, chunk_size), BOUNDARY):
                got.append(body)
        return got

    assert asyncio.run(read()) == [b"one"]


def test_a_spooled_part_is_closed_once_the_next_is_asked_for():
    parts = iter_parts(io.BytesIO(message(b"x" * 5000, b"y")), BOUNDARY, chunk_size=64, spool_after=100)
    _, first = next(parts)
    assert not isinstance(first, bytes) and first.read() == b"x" * 5000
    assert next(parts)[1] == b"y"
    assert first.closed
