"""Slow peers against ``pacskit serve`` (its own process): a peer dripping its
A-ASSOCIATE-RQ, or a P-DATA-TF, one byte at a time is cut at the deadline the timeouts
set for the whole PDU (docs/limits.md), not kept as long as each byte comes in time.

The drippers call from 127.0.0.2, a loopback address of their own, so that what they
hold of the per-address limit is seen apart from the legitimate callers on 127.0.0.1.
"""

from __future__ import annotations

import select
import socket
import threading
import time

import pytest
from hostile_peers import assert_serving, client, connect_from
from raw_pdu import (
    A_ABORT_PDU,
    A_ASSOCIATE_RJ_PDU,
    VERIFICATION,
    Proposed,
    associate_rq,
    c_echo_rq,
    message_pdvs,
    p_data_tf,
)
from raw_requestor import RawRequestor
from serve_process import ARCHIVE_AET, ServeProcess

ACSE_TIMEOUT = 3.0
NETWORK_TIMEOUT = 4.0
DRIPPERS = 65  # one more than the default max_associations and max_connections_per_address
PER_ADDRESS = 64
RQ_DRIP = 1.5
P_DATA_DRIP = 2.5
# How late a cut may come: scheduling on 2 busy cores; the old core kept them for ever.
LATE = 1.0
EARLY = 0.2
ATTACKER = "127.0.0.2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("slow") / "data"
    with ServeProcess(data, settings={"ACSE_TIMEOUT": str(ACSE_TIMEOUT),
                                      "NETWORK_TIMEOUT": str(NETWORK_TIMEOUT)}) as served:
        yield served


class Dripper:
    """A connection that sends ``payload`` one byte at a time, and what came back."""

    def __init__(self, port: int, payload: bytes) -> None:
        self.sock = connect_from(ATTACKER, port)
        self.opened = time.monotonic()
        self.payload = payload
        self.sent = 0
        self.received = bytearray()
        self.closed: float | None = None

    def drip(self) -> None:
        try:
            self.sock.send(self.payload[self.sent:self.sent + 1])
            self.sent += 1
        except OSError:
            self.close()

    def read(self) -> None:
        try:
            data = self.sock.recv(1024)
        except OSError:
            data = b""
        if data:
            self.received += data
        else:
            self.close()

    def close(self) -> None:
        if self.closed is None:
            self.closed = time.monotonic() - self.opened
        self.sock.close()


def drip_all(drippers: list[Dripper], every: float, give_up: float) -> None:
    """Send each open dripper its next byte every ``every`` seconds, and notice each
    close as it happens, until all are closed or ``give_up`` seconds have passed."""
    start = time.monotonic()
    next_drip = start
    while time.monotonic() - start < give_up:
        open_ = [d for d in drippers if d.closed is None]
        if not open_:
            return
        now = time.monotonic()
        if now >= next_drip:
            for dripper in open_:
                dripper.drip()
            next_drip += every
            continue
        readable, _, _ = select.select([d.sock for d in open_], [], [], min(next_drip, start + give_up) - now)
        for dripper in open_:
            if dripper.sock in readable:
                dripper.read()


def test_connections_dripping_the_association_request_are_cut_at_the_acse_timeout(server: ServeProcess,
                                                                                   corpus: list):
    request = associate_rq(ARCHIVE_AET, "DRIPPER", [Proposed(1, VERIFICATION)])
    drippers = [Dripper(server.port, request) for _ in range(DRIPPERS)]
    echoed: list[tuple[int, float]] = []
    started = time.monotonic()

    def echo() -> None:
        echoed.append((client().echo(server.node).status, time.monotonic() - started))

    meanwhile = threading.Thread(target=echo)
    meanwhile.start()
    drip_all(drippers, RQ_DRIP, give_up=ACSE_TIMEOUT + 10 * RQ_DRIP)
    meanwhile.join(10)

    assert echoed and echoed[0][0] == 0x0000 and echoed[0][1] < ACSE_TIMEOUT, echoed
    still_open = [d for d in drippers if d.closed is None]
    assert not still_open, f"{len(still_open)} drippers still open after {ACSE_TIMEOUT + 10 * RQ_DRIP:g} s"
    refused = [d for d in drippers if d.received[:1] == bytes([A_ASSOCIATE_RJ_PDU])]
    cut = [d for d in drippers if not d.received]
    assert len(refused) == DRIPPERS - PER_ADDRESS, [bytes(d.received[:10]).hex() for d in drippers]
    assert all(d.received[7:10] == bytes([0x02, 0x03, 0x02]) for d in refused)  # transient, local limit
    assert all(d.closed is not None and d.closed < LATE for d in refused)
    assert len(cut) == PER_ADDRESS
    times = sorted(d.closed for d in cut if d.closed is not None)
    assert times[0] >= ACSE_TIMEOUT - EARLY and times[-1] <= ACSE_TIMEOUT + LATE, times
    assert all(d.sent < len(request) for d in cut)

    with RawRequestor("127.0.0.1", server.port, ARCHIVE_AET, source=ATTACKER) as again:
        assert again.echo() == 0x0000  # the drippers' slots are free again
    assert_serving(server, corpus[0].path)


def test_a_p_data_dripped_byte_by_byte_is_aborted_at_the_network_timeout(server: ServeProcess, corpus: list):
    pdu = p_data_tf(*message_pdvs(1, c_echo_rq(1)))
    with RawRequestor("127.0.0.1", server.port, ARCHIVE_AET) as requestor:
        sock: socket.socket = requestor.sock
        first_byte = time.monotonic()
        aborted_after: float | None = None
        for position in range(len(pdu) - 1):
            sock.sendall(pdu[position:position + 1])
            if select.select([sock], [], [], P_DATA_DRIP)[0]:
                aborted_after = time.monotonic() - first_byte
                break
        assert aborted_after is not None, f"still open after {len(pdu) - 1} bytes in {time.monotonic() - first_byte:.1f} s"
        answer = requestor.read_pdu(1.0)
        assert answer is not None and answer[0] == A_ABORT_PDU, answer
        assert NETWORK_TIMEOUT - EARLY <= aborted_after <= NETWORK_TIMEOUT + LATE, aborted_after
        assert requestor.read_pdu(1.0) is None  # then the connection is closed
    assert_serving(server, corpus[0].path)
