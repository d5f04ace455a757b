"""DIMSE messages through :class:`Channel` on a real socket pair: whatever the PDU sizes,
what is sent is what is received, and a peer that lies about a PDU's length gets a clear
error."""

from __future__ import annotations

import os
import socket
import struct
import threading

import pytest

from pacskit.errors import AssociationAborted
from pacskit.net.commands import C_STORE_RQ, COMMAND_FIELD, c_store_rq
from pacskit.net.wire import PREALLOCATED, READ_AHEAD, Channel


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    yield Channel(ours, "us", 10, 0), theirs
    ours.close()
    theirs.close()


def send_in_background(sock: socket.socket, peer_max: int, messages: list[bytes]) -> threading.Thread:
    sender = Channel(sock, "peer", 10, peer_max)
    thread = threading.Thread(target=lambda: [sender.send(1, c_store_rq(n, "1.2.3", f"1.2.3.{n}"), data)
                                              for n, data in enumerate(messages, 1)])
    thread.start()
    return thread


@pytest.mark.parametrize("peer_max", [16384, READ_AHEAD + 1000, PREALLOCATED + 4096, 0])
def test_datasets_arrive_whole_whatever_the_pdu_size(pair, peer_max):
    channel, theirs = pair
    sizes = [0, 1, 2, READ_AHEAD - 7, READ_AHEAD + 5, 3 * PREALLOCATED + 11, 10]
    messages = [os.urandom(size) for size in sizes]
    thread = send_in_background(theirs, peer_max, messages)
    for n, sent in enumerate(messages, 1):
        message = channel.receive()
        assert message.us(COMMAND_FIELD) == C_STORE_RQ
        assert message.text(0x1000) == f"1.2.3.{n}"
        assert message.data == sent
    thread.join()


def test_a_sink_takes_the_fragments_in_order(pair):
    channel, theirs = pair
    sent = os.urandom(5 * READ_AHEAD + 3)
    thread = send_in_background(theirs, 16384, [sent])
    pieces: list[bytes] = []

    class Collect:
        def write(self, data):
            pieces.append(bytes(data))

        def discard(self):
            pieces.clear()

    message = channel.receive(lambda context_id, command: Collect())
    thread.join()
    assert message.data is None
    assert len(pieces) > 1
    assert b"".join(pieces) == sent


def test_a_pdu_announced_larger_than_what_comes_is_an_abort(pair):
    channel, theirs = pair
    theirs.sendall(struct.pack(">BBI", 0x04, 0, 60 << 20) + b"\0" * 100)
    theirs.shutdown(socket.SHUT_WR)
    with pytest.raises(AssociationAborted, match="closed the connection"):
        channel.receive()
