"""PduStream (pacskit.net.aio_pdu_stream) on a real loopback connection, a raw socket as
the peer: bytes kept until asked for, waits bounded, memory bounded while nobody reads."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from pacskit.net.aio_pdu_stream import READ_HIGH_WATER, PduStream, PeerClosed


@asynccontextmanager
async def connected() -> AsyncIterator[tuple[PduStream, socket.socket]]:
    """A PduStream connected to a raw socket (the peer), both closed when the block ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        _, stream = await asyncio.get_running_loop().create_connection(PduStream, *listener.getsockname())
        peer, _ = listener.accept()
    finally:
        listener.close()
    peer.setblocking(False)
    try:
        yield stream, peer
    finally:
        peer.close()
        stream.abort()


async def _send(peer: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(peer, data)


def test_bytes_that_arrive_in_pieces_are_taken_whole_and_in_order() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        async with connected() as (stream, peer):
            waiting = asyncio.ensure_future(stream.fill(10, timeout=5))
            for piece in (b"\x04\x00", b"\x00\x00", b"\x00\x04abcd", b"rest"):
                await _send(peer, piece)
                await asyncio.sleep(0)
            await waiting
            first = bytes(stream.take(10))
            await stream.fill(4, timeout=5)
            return first, bytes(stream.take(4))

    assert asyncio.run(scenario()) == (b"\x04\x00\x00\x00\x00\x04abcd", b"rest")


def test_a_wait_that_times_out_keeps_what_came() -> None:
    async def scenario() -> bytes:
        async with connected() as (stream, peer):
            await _send(peer, b"\x04\x00\x00")
            with pytest.raises(TimeoutError):
                await stream.fill(6, timeout=0.2)
            await _send(peer, b"\x00\x00\x00")
            await stream.fill(6, timeout=5)
            return bytes(stream.take(6))

    assert asyncio.run(scenario()) == b"\x04\x00\x00\x00\x00\x00"


def test_a_cancelled_wait_keeps_what_came_for_the_next_read() -> None:
    async def scenario() -> bytes:
        async with connected() as (stream, peer):
            waiting = asyncio.ensure_future(stream.fill(8, timeout=None))
            await _send(peer, b"1234")
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await _send(peer, b"5678")
            await stream.fill(8, timeout=5)
            return bytes(stream.take(8))

    assert asyncio.run(scenario()) == b"12345678"


def test_the_peer_closing_before_the_bytes_came_is_peer_closed() -> None:
    async def scenario() -> None:
        async with connected() as (stream, peer):
            await _send(peer, b"\x04\x00")
            peer.close()
            await stream.fill(6, timeout=5)

    with pytest.raises(PeerClosed):
        asyncio.run(scenario())


def test_memory_stays_bounded_while_nobody_reads_and_everything_arrives_once_read() -> None:
    """A peer sending 8 MB to an association that does not read: reading pauses past the
    high-water mark (TCP holds the rest back), and resumes as bytes are taken."""
    total = 8 << 20

    async def scenario() -> tuple[int, int]:
        async with connected() as (stream, peer):
            sender = asyncio.ensure_future(_send(peer, bytes(total)))
            for _ in range(50):
                await asyncio.sleep(0.01)
            held = len(stream.buffer)
            assert not sender.done()
            received = 0
            while received < total:
                await stream.fill(1, timeout=5)
                received += len(stream.take(len(stream.buffer)))
            await sender
            return held, received

    held, received = asyncio.run(scenario())
    assert 0 < held <= READ_HIGH_WATER + (256 << 10)
    assert received == total


def test_a_read_larger_than_the_high_water_mark_is_let_in_whole() -> None:
    size = 4 * READ_HIGH_WATER

    async def scenario() -> int:
        async with connected() as (stream, peer):
            sender = asyncio.ensure_future(_send(peer, bytes(size + 100)))
            await stream.fill(size, timeout=5)
            taken = len(stream.take(size))
            await sender
            return taken

    assert asyncio.run(scenario()) == size


def test_a_drain_after_the_connection_is_lost_says_so() -> None:
    async def scenario() -> None:
        async with connected() as (stream, peer):
            peer.close()
            stream.close()
            await stream.wait_closed()
            await stream.drain(timeout=1)

    with pytest.raises(ConnectionResetError):
        asyncio.run(scenario())


def test_each_wait_has_its_own_deadline_whatever_the_waits_before_it() -> None:
    """A long wait after a short one is not cut at the short one's deadline; a short wait
    after a long one ends at its own."""
    async def scenario() -> tuple[bytes, float]:
        async with connected() as (stream, peer):
            loop = asyncio.get_running_loop()
            await _send(peer, b"ab")
            await stream.fill(2, timeout=0.1)
            stream.take(2)
            loop.call_later(0.4, lambda: peer.send(b"cd"))
            await stream.fill(2, timeout=5)
            late = bytes(stream.take(2))
            started = loop.time()
            with pytest.raises(TimeoutError):
                await stream.fill(1, timeout=0.2)
            return late, loop.time() - started

    late, waited = asyncio.run(scenario())
    assert late == b"cd"
    assert 0.2 <= waited < 1.0
