"""The PS3.8 upper layer state machine, cell by cell of Table 9-10: each state reached by
legal calls, each event fired, and what comes out (PDU bytes, indications, connection open
and close, next state, ARTIM deadline) checked against the Standard as written below."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pacskit.net.ul.fsm import (
    TRANSITIONS,
    CloseTransport,
    Event,
    Indication,
    OpenTransport,
    Output,
    Primitive,
    ProtocolError,
    SendPdu,
    State,
    UpperLayer,
)

# PS3.8 Table 9-10, copied from the Standard ("." is an empty cell).
TABLE_9_10 = """
       Sta1  Sta2  Sta3  Sta4  Sta5  Sta6  Sta7  Sta8  Sta9  Sta10 Sta11 Sta12 Sta13
Evt1   AE-1  .     .     .     .     .     .     .     .     .     .     .     .
Evt2   .     .     .     AE-2  .     .     .     .     .     .     .     .     .
Evt3   .     AA-1  AA-8  .     AE-3  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt4   .     AA-1  AA-8  .     AE-4  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt5   AE-5  .     .     .     .     .     .     .     .     .     .     .     .
Evt6   .     AE-6  AA-8  .     AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-7
Evt7   .     .     AE-7  .     .     .     .     .     .     .     .     .     .
Evt8   .     .     AE-8  .     .     .     .     .     .     .     .     .     .
Evt9   .     .     .     .     .     DT-1  .     AR-7  .     .     .     .     .
Evt10  .     AA-1  AA-8  .     AA-8  DT-2  AR-6  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt11  .     .     .     .     .     AR-1  .     .     .     .     .     .     .
Evt12  .     AA-1  AA-8  .     AA-8  AR-2  AR-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt13  .     AA-1  AA-8  .     AA-8  AA-8  AR-3  AA-8  AA-8  AR-10 AR-3  AA-8  AA-6
Evt14  .     .     .     .     .     .     .     AR-4  AR-9  .     .     AR-4  .
Evt15  .     .     AA-1  AA-2  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  .
Evt16  .     AA-2  AA-3  .     AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-2
Evt17  .     AA-5  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AR-5
Evt18  .     AA-2  .     .     .     .     .     .     .     .     .     .     AA-2
Evt19  .     AA-1  AA-8  .     AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-7
"""


def parse_table(text: str) -> dict[tuple[int, int], str]:
    header, *rows = text.strip().splitlines()
    states = [int(name[3:]) for name in header.split()]
    cells = {}
    for row in rows:
        event, *actions = row.split()
        for state, action in zip(states, actions, strict=True):
            if action != ".":
                cells[(state, int(event[3:]))] = action
    return cells


STANDARD = parse_table(TABLE_9_10)


def associate_pdu(pdu_type: int, version: int = 0x0001) -> bytes:
    """An A-ASSOCIATE-RQ (1) or -AC (2), PS3.8 9.3.2/9.3.3, with an Application Context."""
    context = b"1.2.840.10008.3.1.1.1"
    item = b"\x10\x00" + len(context).to_bytes(2, "big") + context
    body = (version.to_bytes(2, "big") + b"\x00\x00" + b"STORESCP".ljust(16)
            + b"PACSKIT".ljust(16) + bytes(32) + item)
    return bytes((pdu_type, 0)) + len(body).to_bytes(4, "big") + body


def p_data(payload: bytes) -> bytes:
    """A P-DATA-TF (PS3.8 9.3.5) with one PDV: context 1, last command fragment."""
    pdv = (2 + len(payload)).to_bytes(4, "big") + b"\x01\x03" + payload
    return b"\x04\x00" + len(pdv).to_bytes(4, "big") + pdv


def abort_pdu(source: int, reason: int) -> bytes:
    return bytes((0x07, 0x00, 0, 0, 0, 4, 0x00, 0x00, source, reason))


RQ = associate_pdu(0x01)
AC = associate_pdu(0x02)
RJ = bytes.fromhex("03 00 00000004 00 01 01 07")  # permanent, service-user, called AE unknown
PDATA = p_data(b"\x00" * 8)
RELEASE_RQ = bytes.fromhex("05 00 00000004 00000000")
RELEASE_RP = bytes.fromhex("06 00 00000004 00000000")
PEER_ABORT = abort_pdu(0x02, 0x05)  # service-provider, unexpected PDU parameter
UNKNOWN_PDU = bytes.fromhex("0A 00 00000000")
CLOSE = CloseTransport()
ARTIM = 30.0
MAX = 16384
SETUP_TIME = 100.0
EVENT_TIME = 107.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Step = Callable[[UpperLayer], object]


def connected(ul: UpperLayer) -> object:
    return ul.transport_indication()


def rq_arrives(ul: UpperLayer) -> object:
    return ul.pdu_received(0x01, RQ)


def request(ul: UpperLayer) -> object:
    return ul.associate_request(RQ)


def connect_confirmed(ul: UpperLayer) -> object:
    return ul.transport_confirmed()


def ac_arrives(ul: UpperLayer) -> object:
    return ul.pdu_received(0x02, AC)


def accept(ul: UpperLayer) -> object:
    return ul.accept(AC)


def release(ul: UpperLayer) -> object:
    return ul.release_request()


def release_rq_arrives(ul: UpperLayer) -> object:
    return ul.pdu_received(0x05, RELEASE_RQ)


def release_rp_arrives(ul: UpperLayer) -> object:
    return ul.pdu_received(0x06, RELEASE_RP)


def answer_release(ul: UpperLayer) -> object:
    return ul.release_response()


def abort(ul: UpperLayer) -> object:
    return ul.abort()


def reject(ul: UpperLayer) -> object:
    return ul.reject(RJ)


STA6_REQUESTOR = [request, connect_confirmed, ac_arrives]
STA6_ACCEPTOR = [connected, rq_arrives, accept]

# label -> (state reached, role, legal calls from a new machine). Every state is reached
# by legal calls; none is assigned.
SETUPS: dict[str, tuple[int, bool | None, list[Step]]] = {
    "Sta1": (1, None, []),
    "Sta2": (2, False, [connected]),
    "Sta3": (3, False, [connected, rq_arrives]),
    "Sta4": (4, True, [request]),
    "Sta5": (5, True, [request, connect_confirmed]),
    "Sta6-requestor": (6, True, STA6_REQUESTOR),
    "Sta6-acceptor": (6, False, STA6_ACCEPTOR),
    "Sta7-requestor": (7, True, [*STA6_REQUESTOR, release]),
    "Sta7-acceptor": (7, False, [*STA6_ACCEPTOR, release]),
    "Sta8-requestor": (8, True, [*STA6_REQUESTOR, release_rq_arrives]),
    "Sta8-acceptor": (8, False, [*STA6_ACCEPTOR, release_rq_arrives]),
    "Sta9": (9, True, [*STA6_REQUESTOR, release, release_rq_arrives]),
    "Sta10": (10, False, [*STA6_ACCEPTOR, release, release_rq_arrives]),
    "Sta11": (11, True, [*STA6_REQUESTOR, release, release_rq_arrives, answer_release]),
    "Sta12": (12, False, [*STA6_ACCEPTOR, release, release_rq_arrives, release_rp_arrives]),
    "Sta13-aborted": (13, True, [*STA6_REQUESTOR, abort]),
    "Sta13-released": (13, False, [*STA6_ACCEPTOR, release_rq_arrives, answer_release]),
    "Sta13-rejected": (13, False, [connected, rq_arrives, reject]),
}

# The event each test fires: event number -> call.
FIRE: dict[int, Callable[[UpperLayer, FakeClock], list[Output]]] = {
    1: lambda ul, clock: ul.associate_request(RQ),
    2: lambda ul, clock: ul.transport_confirmed(),
    3: lambda ul, clock: ul.pdu_received(0x02, AC),
    4: lambda ul, clock: ul.pdu_received(0x03, RJ),
    5: lambda ul, clock: ul.transport_indication(),
    6: lambda ul, clock: ul.pdu_received(0x01, RQ),
    7: lambda ul, clock: ul.accept(AC),
    8: lambda ul, clock: ul.reject(RJ),
    9: lambda ul, clock: ul.send_data(PDATA),
    10: lambda ul, clock: ul.pdu_received(0x04, PDATA),
    11: lambda ul, clock: ul.release_request(),
    12: lambda ul, clock: ul.pdu_received(0x05, RELEASE_RQ),
    13: lambda ul, clock: ul.pdu_received(0x06, RELEASE_RP),
    14: lambda ul, clock: ul.release_response(),
    15: lambda ul, clock: ul.abort(),
    16: lambda ul, clock: ul.pdu_received(0x07, PEER_ABORT),
    17: lambda ul, clock: ul.transport_closed(),
    18: lambda ul, clock: expire_artim(ul, clock),
    19: lambda ul, clock: ul.pdu_received(0x0A, UNKNOWN_PDU),
}
USER_EVENTS = {1, 7, 8, 9, 11, 14, 15}


def expire_artim(ul: UpperLayer, clock: FakeClock) -> list[Output]:
    clock.now = ul.artim_deadline if ul.artim_deadline is not None else 1e9
    return ul.poll()


def machine(steps: list[Step]) -> tuple[UpperLayer, FakeClock]:
    clock = FakeClock(SETUP_TIME)
    ul = UpperLayer(artim_timeout=ARTIM, clock=clock, max_pdu_length=MAX)
    for step in steps:
        step(ul)
    clock.now = EVENT_TIME
    return ul, clock


def ending(primitive: Primitive, **fields: Any) -> list[Output]:
    return [Indication(primitive, **fields), CLOSE]


def expected(action: str, state: int, event: int, requestor: bool | None,
             artim_before: float | None) -> tuple[list[Output], int, float | None]:
    """What the Standard's action does (PS3.8 Tables 9-6..9-9): outputs, next state and
    ARTIM deadline, for the event this test fires."""
    started = EVENT_TIME + ARTIM
    provider_reason = 0x01 if event == 19 else 0x02
    peer_abort = {"pdu": PEER_ABORT, "source": 0x02, "reason": 0x05}
    table: dict[str, tuple[list[Output], int, float | None]] = {
        "AE-1": ([OpenTransport()], 4, None),
        "AE-2": ([SendPdu(RQ)], 5, None),
        "AE-3": ([Indication(Primitive.ASSOCIATE_ACCEPTED, AC)], 6, None),
        "AE-4": (ending(Primitive.ASSOCIATE_REJECTED, pdu=RJ), 1, None),
        "AE-5": ([], 2, started),
        "AE-6": ([Indication(Primitive.ASSOCIATE_INDICATION, RQ)], 3, None),
        "AE-7": ([SendPdu(AC)], 6, None),
        "AE-8": ([SendPdu(RJ)], 13, started),
        "DT-1": ([SendPdu(PDATA)], 6, None),
        "DT-2": ([Indication(Primitive.DATA, PDATA)], 6, None),
        "AR-1": ([SendPdu(RELEASE_RQ)], 7, None),
        "AR-2": ([Indication(Primitive.RELEASE_INDICATION, RELEASE_RQ)], 8, None),
        "AR-3": (ending(Primitive.RELEASE_CONFIRM, pdu=RELEASE_RP), 1, None),
        "AR-4": ([SendPdu(RELEASE_RP)], 13, started),
        "AR-5": (ending(Primitive.TRANSPORT_CLOSED), 1, None),
        "AR-6": ([Indication(Primitive.DATA, PDATA)], 7, None),
        "AR-7": ([SendPdu(PDATA)], 8, None),
        "AR-8": ([Indication(Primitive.RELEASE_INDICATION, RELEASE_RQ, collision=True)],
                 9 if requestor else 10, None),
        "AR-9": ([SendPdu(RELEASE_RP)], 11, None),
        "AR-10": ([Indication(Primitive.RELEASE_CONFIRM, RELEASE_RP)], 12, None),
        "AA-1": ([SendPdu(abort_pdu(0x00, 0x00))], 13, started),
        "AA-3": (ending(Primitive.ABORT, **peer_abort), 1, None),
        "AA-4": (ending(Primitive.PROVIDER_ABORT, reason=0x00), 1, None),
        "AA-5": (ending(Primitive.PROVIDER_ABORT, reason=0x00), 1, None),
        "AA-6": ([], 13, artim_before),
        "AA-7": ([SendPdu(abort_pdu(0x02, provider_reason))], 13, artim_before),
        "AA-8": ([SendPdu(abort_pdu(0x02, provider_reason)),
                  Indication(Primitive.PROVIDER_ABORT, reason=provider_reason)], 13, started),
    }
    if action == "AA-2":
        if state == 2 and event == 16:
            return ending(Primitive.ABORT, **peer_abort), 1, None
        if state == 2:
            return ending(Primitive.PROVIDER_ABORT, reason=0x00), 1, None
        return ending(Primitive.TRANSPORT_CLOSED), 1, None
    return table[action]


CASES = [pytest.param(label, event, id=f"{label}-Evt{event}")
         for label in SETUPS for event in range(1, 20)]


@pytest.mark.parametrize(("label", "event"), CASES)
def test_every_cell_of_table_9_10(label: str, event: int) -> None:
    state, requestor, steps = SETUPS[label]
    ul, clock = machine(steps)
    assert (ul.state, ul.is_requestor) == (State(state), requestor)
    artim_before = ul.artim_deadline
    action = STANDARD.get((state, event))

    if action is None:
        if event == 18:
            assert artim_before is None  # ARTIM runs only in Sta2 and Sta13
        if event in USER_EVENTS or event in (2, 5) or (state != 1 and event != 18):
            with pytest.raises(ProtocolError):
                FIRE[event](ul, clock)
        else:  # stale transport events in Sta1, a poll() with ARTIM stopped
            assert FIRE[event](ul, clock) == []
        assert (ul.state, ul.artim_deadline) == (State(state), artim_before)
        return

    outputs, next_state, artim = expected(action, state, event, requestor, artim_before)
    assert FIRE[event](ul, clock) == outputs
    assert ul.state == State(next_state)
    assert ul.artim_deadline == artim


def test_transitions_holds_exactly_the_cells_of_table_9_10() -> None:
    ours = {(state.value, event.value): action for (state, event), (action, _) in
            TRANSITIONS.items()}
    assert ours == STANDARD


def test_next_state_is_left_to_the_action_only_for_ae6_and_ar8() -> None:
    deciding = {action for action, next_state in TRANSITIONS.values() if next_state is None}
    assert deciding == {"AE-6", "AR-8"}


def test_states_and_events_carry_their_meaning_in_the_standard() -> None:
    assert [state.value for state in State] == list(range(1, 14))
    assert [event.value for event in Event] == list(range(1, 20))
    assert State.STA10.__doc__ == "Release collision acceptor side; awaiting A-RELEASE-RP PDU."
    assert Event.EVT18.__doc__ == "ARTIM timer expired (Association reject/release timer)."
    assert len({member.__doc__ for member in [*State, *Event]}) == 13 + 19


def test_a_state_setup_exists_for_every_state() -> None:
    assert {state for state, _, _ in SETUPS.values()} == set(range(1, 14))


# -- two machines wired together ----------------------------------------------------------


class Wire:
    """A requestor and an acceptor joined through their outputs, like a TCP connection:
    PDUs in flight wait in order until delivered, a close arrives after them. The driver
    part accepts every association and answers release whenever the machine owes it."""

    CLOSED = object()

    def __init__(self) -> None:
        self.clock = FakeClock(0.0)
        self.requestor = UpperLayer(clock=self.clock)
        self.acceptor = UpperLayer(clock=self.clock)
        self.inbox: dict[int, list[object]] = {id(self.requestor): [], id(self.acceptor): []}
        self.sent: dict[int, list[bytes]] = {id(self.requestor): [], id(self.acceptor): []}
        self.told: dict[int, list[Indication]] = {id(self.requestor): [], id(self.acceptor): []}
        self.states: dict[int, list[State]] = {id(self.requestor): [], id(self.acceptor): []}
        self.closes: list[str] = []
        self.accepting = True

    def peer(self, ul: UpperLayer) -> UpperLayer:
        return self.acceptor if ul is self.requestor else self.requestor

    def name(self, ul: UpperLayer) -> str:
        return "requestor" if ul is self.requestor else "acceptor"

    def carry(self, ul: UpperLayer, outputs: list[Output]) -> None:
        self.states[id(ul)].append(ul.state)
        peer = self.peer(ul)
        for output in outputs:
            if isinstance(output, OpenTransport):
                self.carry(peer, peer.transport_indication())
                self.carry(ul, ul.transport_confirmed())
            elif isinstance(output, SendPdu):
                self.sent[id(ul)].append(bytes(output.data))
                self.inbox[id(peer)].append(bytes(output.data))
            elif isinstance(output, CloseTransport):
                self.closes.append(self.name(ul))
                if self.name(peer) not in self.closes:
                    self.inbox[id(peer)].append(self.CLOSED)
            else:
                self.told[id(ul)].append(output)
                self.respond(ul, output)

    def respond(self, ul: UpperLayer, indication: Indication) -> None:
        if indication.primitive is Primitive.ASSOCIATE_INDICATION:
            self.carry(ul, ul.accept(AC) if self.accepting else ul.reject(RJ))
        elif ul.awaiting_release_response:
            self.carry(ul, ul.release_response())

    def deliver(self, ul: UpperLayer) -> bool:
        inbox = self.inbox[id(ul)]
        if not inbox:
            return False
        item = inbox.pop(0)
        if item is self.CLOSED:
            self.carry(ul, ul.transport_closed())
        else:
            assert isinstance(item, bytes)
            self.carry(ul, ul.pdu_received(item[0], item))
        return True

    def run(self, first: UpperLayer | None = None) -> None:
        order = [first or self.requestor, self.peer(first or self.requestor)]
        while any([self.deliver(order[0]), self.deliver(order[1])]):
            pass

    def associate(self) -> None:
        self.carry(self.requestor, self.requestor.associate_request(RQ))
        self.run()
        assert (self.requestor.state, self.acceptor.state) == (State.STA6, State.STA6)

    def primitives(self, ul: UpperLayer) -> list[tuple[Primitive, bool]]:
        return [(told.primitive, told.collision) for told in self.told[id(ul)]]


def test_association_data_and_release_between_two_machines() -> None:
    wire = Wire()
    wire.associate()
    to_acceptor, to_requestor = p_data(b"request"), p_data(b"response")
    wire.carry(wire.requestor, wire.requestor.send_data(to_acceptor))
    wire.carry(wire.acceptor, wire.acceptor.send_data(memoryview(to_requestor)))
    wire.run()
    wire.carry(wire.requestor, wire.requestor.release_request())
    wire.run()

    req, acc = wire.requestor, wire.acceptor
    assert wire.sent[id(req)] == [RQ, to_acceptor, RELEASE_RQ]
    assert wire.sent[id(acc)] == [AC, to_requestor, RELEASE_RP]
    assert [t.pdu for t in wire.told[id(acc)] if t.primitive is Primitive.DATA] == [to_acceptor]
    assert [t.pdu for t in wire.told[id(req)] if t.primitive is Primitive.DATA] == [to_requestor]
    assert wire.primitives(req) == [(Primitive.ASSOCIATE_ACCEPTED, False), (Primitive.DATA, False),
                                    (Primitive.RELEASE_CONFIRM, False)]
    assert wire.primitives(acc) == [(Primitive.ASSOCIATE_INDICATION, False),
                                    (Primitive.DATA, False),
                                    (Primitive.RELEASE_INDICATION, False),
                                    (Primitive.TRANSPORT_CLOSED, False)]
    assert wire.closes == ["requestor", "acceptor"]
    assert (req.state, acc.state) == (State.STA1, State.STA1)
    assert (req.artim_deadline, acc.artim_deadline) == (None, None)


@pytest.mark.parametrize("first", ["requestor", "acceptor"])
def test_release_collision_between_two_machines(first: str) -> None:
    wire = Wire()
    wire.associate()
    req, acc = wire.requestor, wire.acceptor
    wire.carry(req, req.release_request())
    wire.carry(acc, acc.release_request())
    wire.run(first=req if first == "requestor" else acc)

    assert wire.sent[id(req)] == [RQ, RELEASE_RQ, RELEASE_RP]
    assert wire.sent[id(acc)] == [AC, RELEASE_RQ, RELEASE_RP]
    assert wire.states[id(req)][-4:] == [State.STA7, State.STA9, State.STA11, State.STA1]
    assert wire.states[id(acc)][-5:] == [State.STA7, State.STA10, State.STA12, State.STA13,
                                         State.STA1]
    assert wire.primitives(req)[1:] == [(Primitive.RELEASE_INDICATION, True),
                                        (Primitive.RELEASE_CONFIRM, False)]
    assert wire.primitives(acc)[1:] == [(Primitive.RELEASE_INDICATION, True),
                                        (Primitive.RELEASE_CONFIRM, False),
                                        (Primitive.TRANSPORT_CLOSED, False)]
    assert wire.closes == ["requestor", "acceptor"]
    assert (req.state, acc.state) == (State.STA1, State.STA1)


def test_rejection_between_two_machines() -> None:
    wire = Wire()
    wire.accepting = False
    req, acc = wire.requestor, wire.acceptor
    wire.carry(req, req.associate_request(RQ))
    wire.run()

    assert wire.sent[id(acc)] == [RJ]
    assert wire.primitives(req) == [(Primitive.ASSOCIATE_REJECTED, False)]
    assert wire.primitives(acc)[-1] == (Primitive.TRANSPORT_CLOSED, False)
    assert wire.closes == ["requestor", "acceptor"]
    assert (req.state, acc.state) == (State.STA1, State.STA1)


def test_abort_between_two_machines() -> None:
    wire = Wire()
    wire.associate()
    req, acc = wire.requestor, wire.acceptor
    wire.carry(acc, acc.abort(0x02, 0x06))
    wire.run()

    assert wire.sent[id(acc)][-1] == abort_pdu(0x02, 0x06)
    assert wire.told[id(req)][-1] == Indication(Primitive.ABORT, abort_pdu(0x02, 0x06), 0x02, 0x06)
    assert wire.primitives(acc)[-1] == (Primitive.TRANSPORT_CLOSED, False)
    assert wire.closes == ["requestor", "acceptor"]
    assert (req.state, acc.state) == (State.STA1, State.STA1)


# -- ARTIM --------------------------------------------------------------------------------


def test_artim_in_sta2_expires_only_at_its_deadline() -> None:
    ul, clock = machine([connected])
    assert ul.artim_deadline == SETUP_TIME + ARTIM
    clock.now = SETUP_TIME + ARTIM - 0.001
    assert ul.poll() == []
    assert ul.poll(now=SETUP_TIME + 1) == []
    assert ul.state is State.STA2
    clock.now = SETUP_TIME + ARTIM
    assert ul.poll() == ending(Primitive.PROVIDER_ABORT, reason=0x00)
    assert (ul.state, ul.artim_deadline) == (State.STA1, None)
    assert ul.poll(now=1e9) == []


def test_artim_in_sta13_closes_the_connection_the_peer_left_open() -> None:
    ul, clock = machine([*STA6_ACCEPTOR, release_rq_arrives, answer_release])
    assert ul.artim_deadline == SETUP_TIME + ARTIM
    assert ul.poll(now=SETUP_TIME + ARTIM - 1) == []
    assert ul.poll(now=SETUP_TIME + ARTIM + 5) == ending(Primitive.TRANSPORT_CLOSED)
    assert (ul.state, ul.artim_deadline) == (State.STA1, None)


def test_aa1_in_sta2_restarts_artim() -> None:
    ul, clock = machine([connected])
    clock.now = SETUP_TIME + 20
    assert ul.pdu_received(0x06, RELEASE_RP) == [SendPdu(abort_pdu(0x00, 0x00))]
    assert ul.artim_deadline == SETUP_TIME + 20 + ARTIM
    assert ul.poll(now=SETUP_TIME + ARTIM) == []
    assert ul.state is State.STA13


def test_artim_is_stopped_by_an_acceptable_associate_rq() -> None:
    ul, clock = machine([connected, rq_arrives])
    assert ul.artim_deadline is None
    assert ul.poll(now=1e9) == []
    assert ul.state is State.STA3


def test_poll_without_a_time_reads_the_injected_clock() -> None:
    ul, clock = machine([*STA6_REQUESTOR, abort])
    clock.now = ul.artim_deadline - 0.5  # type: ignore[operator]
    assert ul.poll() == []
    clock.now += 0.5
    assert ul.poll() == ending(Primitive.TRANSPORT_CLOSED)


# -- service-user primitives out of place -------------------------------------------------


@pytest.mark.parametrize(("steps", "call"), [
    ([], lambda ul: ul.send_data(PDATA)),
    ([], lambda ul: ul.release_request()),
    ([], lambda ul: ul.abort()),
    ([request], lambda ul: ul.associate_request(RQ)),
    ([connected], lambda ul: ul.accept(AC)),
    ([connected, rq_arrives, accept], lambda ul: ul.accept(AC)),
    (STA6_REQUESTOR, lambda ul: ul.release_response()),
    ([*STA6_REQUESTOR, release], lambda ul: ul.send_data(PDATA)),
    ([*STA6_ACCEPTOR, release, release_rq_arrives], lambda ul: ul.release_response()),
    ([*STA6_REQUESTOR, abort], lambda ul: ul.abort()),
], ids=["data-Sta1", "release-Sta1", "abort-Sta1", "associate-Sta4", "accept-Sta2",
        "accept-Sta6", "release-response-Sta6", "data-Sta7", "release-response-Sta10",
        "abort-Sta13"])
def test_user_primitive_out_of_place_raises(steps: list[Step],
                                            call: Callable[[UpperLayer], object]) -> None:
    ul, _ = machine(steps)
    before = (ul.state, ul.artim_deadline)
    with pytest.raises(ProtocolError, match="not allowed in STA"):
        call(ul)
    assert (ul.state, ul.artim_deadline) == before


def test_transport_events_the_driver_cannot_have_seen_raise() -> None:
    ul, _ = machine([request])
    with pytest.raises(ProtocolError):
        ul.pdu_received(0x02, AC)
    with pytest.raises(ProtocolError):
        ul.transport_indication()
    ul, _ = machine(STA6_REQUESTOR)
    with pytest.raises(ProtocolError):
        ul.transport_confirmed()


def test_awaiting_release_response_is_true_where_release_response_is_allowed() -> None:
    for label, (state, _, steps) in SETUPS.items():
        ul, _ = machine(steps)
        assert ul.awaiting_release_response is ((state, 14) in STANDARD), label


# -- PDUs: mapping, validation, the P-DATA path -------------------------------------------


def test_p_data_indication_is_the_received_object() -> None:
    ul, _ = machine(STA6_ACCEPTOR)
    for pdu in (bytearray(PDATA), memoryview(PDATA)):
        (indication,) = ul.pdu_received(0x04, pdu)
        assert indication.primitive is Primitive.DATA
        assert indication.pdu is pdu
    ul, _ = machine([*STA6_REQUESTOR, release])
    view = memoryview(PDATA)
    assert ul.pdu_received(0x04, view)[0].pdu is view
    assert ul.state is State.STA7


def test_send_data_sends_the_given_object() -> None:
    ul, _ = machine(STA6_REQUESTOR)
    view = memoryview(bytearray(PDATA))
    (output,) = ul.send_data(view)
    assert isinstance(output, SendPdu) and output.data is view


@pytest.mark.parametrize("steps", [STA6_ACCEPTOR, [*STA6_REQUESTOR, release]],
                         ids=["Sta6", "Sta7"])
def test_p_data_up_to_max_pdu_length_passes_and_longer_aborts(steps: list[Step]) -> None:
    ul, _ = machine(steps)
    state = ul.state
    at_limit = p_data(bytes(MAX - 6))
    assert len(at_limit) - 6 == MAX
    assert ul.pdu_received(0x04, at_limit) == [Indication(Primitive.DATA, at_limit)]
    assert ul.state is state
    assert ul.pdu_received(0x04, p_data(bytes(MAX - 5))) == [
        SendPdu(abort_pdu(0x02, 0x06)), Indication(Primitive.PROVIDER_ABORT, reason=0x06)]
    assert ul.state is State.STA13


def test_no_limit_when_max_pdu_length_is_zero() -> None:
    ul = UpperLayer(max_pdu_length=0)
    for step in STA6_ACCEPTOR:
        step(ul)
    big = p_data(bytes(1 << 20))
    assert ul.pdu_received(0x04, big) == [Indication(Primitive.DATA, big)]


@pytest.mark.parametrize("pdu_type", [0x00, 0x08, 0x09, 0xFF])
def test_unknown_pdu_type_is_unrecognized_pdu(pdu_type: int) -> None:
    ul, _ = machine(STA6_ACCEPTOR)
    assert ul.pdu_received(pdu_type, bytes((pdu_type, 0, 0, 0, 0, 0))) == [
        SendPdu(abort_pdu(0x02, 0x01)), Indication(Primitive.PROVIDER_ABORT, reason=0x01)]


@pytest.mark.parametrize("pdu", [
    bytes.fromhex("05 00 00000005 00000000 00"),
    bytes.fromhex("06 00 00000003 000000"),
    bytes.fromhex("07 00 00000006 0000 0000 0000"),
    bytes.fromhex("07 00 00000005 00000000"),
    bytes.fromhex("03 00 00000004 0001"),
    associate_pdu(0x02)[:73],
], ids=["release-rq-long", "release-rp-short", "abort-long", "abort-bad-length-field",
        "rj-short", "ac-truncated"])
def test_fixed_size_pdu_with_a_wrong_length_is_invalid(pdu: bytes) -> None:
    ul, _ = machine(STA6_REQUESTOR)
    assert ul.pdu_received(pdu[0], pdu) == [
        SendPdu(abort_pdu(0x02, 0x06)), Indication(Primitive.PROVIDER_ABORT, reason=0x06)]
    assert ul.state is State.STA13


def test_a_user_abort_from_the_peer_is_indicated_with_its_source_and_reason() -> None:
    ul, _ = machine(STA6_ACCEPTOR)
    user_abort = abort_pdu(0x00, 0x00)
    assert ul.pdu_received(0x07, user_abort) == ending(Primitive.ABORT, pdu=user_abort,
                                                       source=0x00, reason=0x00)


@pytest.mark.parametrize("reason", [0x00, 0x01, 0x02, 0x04, 0x05, 0x06])
def test_invalid_pdu_aborts_with_the_drivers_reason(reason: int) -> None:
    ul, _ = machine(STA6_REQUESTOR)
    assert ul.invalid_pdu(reason) == [SendPdu(abort_pdu(0x02, reason)),
                                      Indication(Primitive.PROVIDER_ABORT, reason=reason)]
    ul, _ = machine([*STA6_REQUESTOR, abort])
    assert ul.invalid_pdu(reason) == [SendPdu(abort_pdu(0x02, reason))]
    assert ul.state is State.STA13


@pytest.mark.parametrize("reason", [0x03, 0x07, 0xFF])
def test_invalid_pdu_refuses_a_reason_ps38_does_not_define(reason: int) -> None:
    ul, _ = machine(STA6_REQUESTOR)
    with pytest.raises(ValueError):
        ul.invalid_pdu(reason)
    assert ul.state is State.STA6


def test_abort_sends_the_callers_source_and_reason() -> None:
    ul, _ = machine(STA6_REQUESTOR)
    assert ul.abort(0x02, 0x05) == [SendPdu(abort_pdu(0x02, 0x05))]
    assert (ul.state, ul.artim_deadline) == (State.STA13, EVENT_TIME + ARTIM)


@pytest.mark.parametrize(("source", "reason"), [(0x01, 0x00), (0x00, 0x02), (0x02, 0x03),
                                                (0x03, 0x00)])
def test_abort_refuses_a_source_or_reason_ps38_does_not_allow(source: int, reason: int) -> None:
    ul, _ = machine(STA6_REQUESTOR)
    with pytest.raises(ValueError):
        ul.abort(source, reason)
    assert ul.state is State.STA6


@pytest.mark.parametrize("version", [0x0000, 0x0002, 0xFFFE])
def test_associate_rq_without_protocol_version_1_is_rejected_by_the_provider(
        version: int) -> None:
    ul, _ = machine([connected])
    assert ul.pdu_received(0x01, associate_pdu(0x01, version)) == [
        SendPdu(bytes.fromhex("03 00 00000004 00 01 02 02"))]
    assert (ul.state, ul.artim_deadline) == (State.STA13, EVENT_TIME + ARTIM)


@pytest.mark.parametrize("version", [0x0001, 0x0003, 0xFFFF])
def test_associate_rq_with_bit_0_of_protocol_version_is_acceptable(version: int) -> None:
    ul, _ = machine([connected])
    rq = associate_pdu(0x01, version)
    assert ul.pdu_received(0x01, rq) == [Indication(Primitive.ASSOCIATE_INDICATION, rq)]
    assert ul.state is State.STA3


def test_truncated_associate_rq_in_sta2_is_aborted() -> None:
    ul, _ = machine([connected])
    assert ul.pdu_received(0x01, RQ[:20]) == [SendPdu(abort_pdu(0x00, 0x00))]
    assert ul.state is State.STA13


def test_stale_transport_events_in_sta1_are_ignored() -> None:
    ul, _ = machine([*STA6_REQUESTOR, release, release_rp_arrives])
    assert ul.state is State.STA1
    assert ul.pdu_received(0x04, PDATA) == []
    assert ul.invalid_pdu(0x01) == []
    assert ul.transport_closed() == []
    assert ul.state is State.STA1


def test_a_machine_back_in_sta1_can_associate_again() -> None:
    ul, _ = machine([connected, rq_arrives, reject, lambda ul: ul.transport_closed()])
    assert (ul.state, ul.is_requestor) == (State.STA1, False)
    assert ul.associate_request(RQ) == [OpenTransport()]
    assert ul.transport_confirmed() == [SendPdu(RQ)]
    assert (ul.state, ul.is_requestor) == (State.STA5, True)


def test_connection_that_cannot_open_is_a_provider_abort() -> None:
    ul, _ = machine([request])
    assert ul.transport_closed() == ending(Primitive.PROVIDER_ABORT, reason=0x00)
    assert ul.state is State.STA1
