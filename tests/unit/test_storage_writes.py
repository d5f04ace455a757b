"""How a received instance reaches its file: its pieces (views into the received bytes,
names blanked without a copy) written one after the other by ``writev``, whatever the
kernel takes at each call."""

from __future__ import annotations

import os

from pacskit import storage


def test_every_piece_is_written_in_order_when_the_kernel_takes_little_at_a_time(tmp_path, monkeypatch):
    data = bytes(range(256)) * 40
    pieces = [memoryview(data)[:1000], b"", b"HEADER", memoryview(data)[1000:], b"tail"]
    real, calls = os.writev, []

    def stingy(fd: int, buffers: list[memoryview]) -> int:
        calls.append(len(buffers))
        return real(fd, [bytes(buffers[0])[:777]])

    monkeypatch.setattr(storage.os, "writev", stingy)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        written = storage._write_all(fd, pieces)
    finally:
        os.close(fd)
    expected = data[:1000] + b"HEADER" + data[1000:] + b"tail"
    assert written == len(expected) and path.read_bytes() == expected
    assert len(calls) > len(expected) // 777


def test_an_instance_in_many_pieces_is_written_whole(tmp_path):
    pieces = [bytes([i % 256]) * 3 for i in range(3000)]
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        assert storage._write_all(fd, pieces) == 9000
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(pieces)
