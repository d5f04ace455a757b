"""DIMSE messages through an :class:`Association` on a real socket pair: whatever the PDU
sizes, what is sent is what is received, and a peer that lies about a PDU's length gets a
clear error."""

from __future__ import annotations

import os
import socket
import struct
import threading

import pytest
from pynetdicom import build_context

from pacskit.errors import AssociationAborted
from pacskit.net.association import Association
from pacskit.net.commands import C_STORE_RQ, COMMAND_FIELD, c_store_rq
from pacskit.net.transport import PREALLOCATED, READ_AHEAD, Transport
from pacskit.net.ul.negotiation import Proposal
from pacskit.nodes import Node
from pacskit.settings import Settings

CT = "1.2.840.10008.5.1.4.1.1.2"


def established(sender_max: int, receiver_max: int = 0) -> tuple[Association, Association]:
    """A requestor (whose peer accepts PDUs of ``sender_max``) and an acceptor, over a
    socket pair, with one CT context."""
    ours, theirs = socket.socketpair()
    accepted: list[Association] = []

    def accept() -> None:
        association, request = Association.incoming(Transport(theirs, "requestor", 10), "requestor",
                                                     Settings(max_pdu=sender_max))
        assert request is not None
        association.accept(request, [build_context(CT)], Settings(max_pdu=sender_max))
        accepted.append(association)

    thread = threading.Thread(target=accept)
    thread.start()
    requestor = Association.negotiate(Transport(ours, "acceptor", 10), Settings(max_pdu=receiver_max),
                                      Node(ae_title="ANY", host="127.0.0.1", port=1),
                                      Proposal("US", "ANY", [build_context(CT)], receiver_max))
    thread.join()
    return requestor, accepted[0]


def send_in_background(sender: Association, messages: list[bytes]) -> threading.Thread:
    context = next(iter(sender.contexts))
    thread = threading.Thread(target=lambda: [sender.send(context, c_store_rq(n, CT, f"1.2.3.{n}"), data)
                                              for n, data in enumerate(messages, 1)])
    thread.start()
    return thread


@pytest.mark.parametrize("peer_max", [16384, READ_AHEAD + 1000, PREALLOCATED + 4096, 0])
def test_datasets_arrive_whole_whatever_the_pdu_size(peer_max):
    sender, receiver = established(peer_max)
    receiver.max_data = 1 << 30
    sizes = [0, 1, 2, READ_AHEAD - 7, READ_AHEAD + 5, 3 * PREALLOCATED + 11, 10]
    messages = [os.urandom(size) for size in sizes]
    thread = send_in_background(sender, messages)
    for n, sent in enumerate(messages, 1):
        message = receiver.receive()
        assert message.us(COMMAND_FIELD) == C_STORE_RQ
        assert message.text(0x1000) == f"1.2.3.{n}"
        assert message.data == sent
    thread.join()


def test_a_sink_takes_the_fragments_in_order():
    sender, receiver = established(16384)
    sent = os.urandom(5 * READ_AHEAD + 3)
    thread = send_in_background(sender, [sent])
    pieces: list[bytes] = []

    class Collect:
        def write(self, data):
            pieces.append(bytes(data))

        def discard(self):
            pieces.clear()

    message = receiver.receive(lambda context_id, command: Collect())
    thread.join()
    assert message.data is None
    assert len(pieces) > 1
    assert b"".join(pieces) == sent


def test_a_pdu_announced_larger_than_what_comes_is_an_abort():
    sender, receiver = established(0)
    sender.transport.write(struct.pack(">BBI", 0x04, 0, 60 << 20) + b"\0" * 100)
    sender.transport.sock.shutdown(socket.SHUT_WR)
    with pytest.raises(AssociationAborted, match="closed the connection"):
        receiver.receive()


def test_a_pdu_longer_than_we_announced_is_aborted_before_it_is_read():
    sender, receiver = established(16384, receiver_max=16384)
    sender.transport.write(struct.pack(">BBI", 0x04, 0, 16385))
    with pytest.raises(AssociationAborted, match="16385 bytes"):
        receiver.receive()
    assert sender.transport.read_pdu(100)[1] == bytes.fromhex("07000000000400000206")


def test_sending_on_an_association_the_peer_aborted_raises_aborted_not_a_protocol_error():
    sender, receiver = established(16384)
    sender.abort()
    with pytest.raises(AssociationAborted):
        receiver.receive()
    context = next(iter(receiver.contexts))
    with pytest.raises(AssociationAborted, match="has ended"):
        receiver.send(context, c_store_rq(1, CT, "1.2.3"), b"")
