"""Bounded inflation (pacskit.deflate) and the iterative well-formedness walk
(pacskit.dataset_check): what each refuses, and that what is sound passes untouched."""

from __future__ import annotations

import io
import os
import struct
import sys
import zlib

import pytest
from pydicom import Dataset
from pydicom.sequence import Sequence
from pynetdicom.dsutils import encode

from pacskit.dataset_check import check_dataset
from pacskit.deflate import (
    CHUNK,
    INSTANCE_CAP,
    INSTANCE_FLOOR,
    INSTANCE_RATIO,
    InflationLimitExceeded,
    inflate,
    inflate_head,
    inflate_into,
    instance_limit,
)
from pacskit.encoded import EXPLICIT_LITTLE, IMPLICIT_LITTLE, MAX_NESTING

MiB = 1 << 20


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("data", [b"", b"abc", os.urandom(3 * MiB), bytes(5 * MiB) + os.urandom(100)],
                         ids=["empty", "short", "random", "zeros"])
def test_what_inflates_within_the_limit_comes_back_whole(data):
    assert inflate(deflated(data), 8 * MiB) == data
    found = inflate_head(io.BytesIO(deflated(data)), 8 * MiB, head=1000)
    assert (found.head, found.size) == (data[:1000], len(data))


def test_an_inflation_past_the_limit_is_refused_having_produced_no_more_than_it():
    bomb = deflated(bytes(64 * MiB))
    produced: list[int] = []
    with pytest.raises(InflationLimitExceeded) as refused:
        inflate_into(io.BytesIO(bomb), 4 * MiB, lambda piece: produced.append(len(piece)))
    assert refused.value.limit == 4 * MiB
    assert sum(produced) <= 4 * MiB and max(produced) <= CHUNK
    with pytest.raises(InflationLimitExceeded):
        inflate(bomb, 4 * MiB - 1)


@pytest.mark.parametrize("stream", [deflated(b"x" * 100_000)[:-10], b"\xff" * 100],
                         ids=["truncated", "not deflate"])
def test_what_is_not_a_whole_deflate_stream_is_a_value_error(stream):
    with pytest.raises(ValueError):
        inflate(stream, MiB)


def test_the_instance_limit_is_a_multiple_of_the_compressed_size_between_a_floor_and_a_cap():
    assert instance_limit(1000) == INSTANCE_FLOOR
    assert instance_limit(10 * MiB) == INSTANCE_RATIO * 10 * MiB
    assert instance_limit(1 << 40) == INSTANCE_CAP


def nested(depth: int) -> Dataset:
    inner = Dataset()
    inner.CodeValue = "LEAF"
    for _ in range(depth):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    return inner


def encoded(ds: Dataset, implicit: bool = False) -> bytes:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    try:
        data = encode(ds, implicit, True)
    finally:
        sys.setrecursionlimit(limit)
    assert data is not None
    return data


def undefined_lengths(depth: int) -> bytes:
    """``depth`` Content Sequences nested with undefined lengths and delimiters."""
    head = struct.pack("<HH2s2xI", 0x0040, 0xA730, b"SQ", 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000,
                                                                                    0xFFFFFFFF)
    tail = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return head * depth + b"\x08\x00\x00\x01SH\x04\x00LEAF" + tail * depth


@pytest.mark.parametrize(("data", "encoding"), [
    (encoded(nested(MAX_NESTING)), EXPLICIT_LITTLE),
    (encoded(nested(MAX_NESTING), implicit=True), IMPLICIT_LITTLE),
    (undefined_lengths(MAX_NESTING), EXPLICIT_LITTLE),
], ids=["defined lengths", "implicit VR", "undefined lengths"])
def test_sequences_nested_to_the_limit_pass(data, encoding):
    check_dataset(data, 0, encoding)


@pytest.mark.parametrize(("data", "encoding"), [
    (encoded(nested(1000)), EXPLICIT_LITTLE),
    (encoded(nested(1000), implicit=True), IMPLICIT_LITTLE),
    (undefined_lengths(1000), EXPLICIT_LITTLE),
], ids=["defined lengths", "implicit VR", "undefined lengths"])
def test_sequences_nested_a_thousand_deep_are_refused_without_recursion(data, encoding):
    with pytest.raises(ValueError, match="nested more than"):
        check_dataset(data, 0, encoding)


def test_a_value_longer_than_its_stream_is_refused():
    header = b"\x08\x00\x60\x00CS\x02\x00OT"
    with pytest.raises(ValueError, match=r"\(7FE0,0010\) runs past the end"):
        check_dataset(header + struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OW", MiB) + bytes(100), 0, EXPLICIT_LITTLE)


def test_an_item_longer_than_its_sequence_is_refused():
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 100) + b"\x08\x00\x00\x01SH\x04\x00LEAF"
    sequence = struct.pack("<HH2s2xI", 0x0040, 0xA730, b"SQ", len(item)) + item
    with pytest.raises(ValueError, match="item runs past"):
        check_dataset(sequence, 0, EXPLICIT_LITTLE)


def test_encapsulated_pixel_data_fragments_are_stepped_over():
    fragments = (struct.pack("<HHI", 0xFFFE, 0xE000, 0) + struct.pack("<HHI", 0xFFFE, 0xE000, 4) + b"\xfe\xff\x00\xe0"
                 + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    check_dataset(struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OB", 0xFFFFFFFF) + fragments, 0, EXPLICIT_LITTLE)
