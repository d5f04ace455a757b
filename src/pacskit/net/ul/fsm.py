"""The DICOM Upper Layer protocol state machine of PS3.8 section 9.2, without I/O.

:class:`UpperLayer` holds the state (Sta1-Sta13, PS3.8 Table 9-1 and its continuations
9-2..9-5) and the ARTIM deadline of one association. Each of its methods is one event of
PS3.8 Table 9-10 (Evt1-Evt19); it performs the action of the table's cell (AE-1..AE-8,
DT-1..DT-2, AR-1..AR-10, AA-1..AA-8, PS3.8 Tables 9-6..9-9) and returns what the driver
must do, in order: :class:`SendPdu`, :class:`OpenTransport`, :class:`CloseTransport` and
:class:`Indication` to the service user. It opens no socket, starts no thread or timer
(ARTIM is :attr:`UpperLayer.artim_deadline`, checked by :meth:`UpperLayer.poll`) and logs
nothing.

The driver's contract
---------------------
* Carry out the outputs in the order returned. ``CloseTransport``, when present, is always
  the last output.
* Every call that brings the machine back to Sta1 returns, as its last two outputs, an
  :class:`Indication` that ends the connection (``ASSOCIATE_REJECTED``, ``RELEASE_CONFIRM``,
  ``ABORT``, ``PROVIDER_ABORT`` or ``TRANSPORT_CLOSED``) and ``CloseTransport``. This holds
  after Evt17 too, where the peer has already closed: ``CloseTransport`` then only releases
  the socket, so the driver's close must be idempotent.
* ``ASSOCIATE_INDICATION`` (Sta3): call :meth:`~UpperLayer.accept` or
  :meth:`~UpperLayer.reject` (or :meth:`~UpperLayer.abort`).
* ``RELEASE_INDICATION`` with ``collision=False`` (AR-2, Sta8): the peer asked to release;
  the driver may still :meth:`~UpperLayer.send_data` (AR-7), then calls
  :meth:`~UpperLayer.release_response` (AR-4, Sta13). The peer then closes the connection.
* Release collision (PS3.8 9.2.6), both sides called :meth:`~UpperLayer.release_request`
  and then received the peer's A-RELEASE-RQ; AR-8 issues ``RELEASE_INDICATION`` with
  ``collision=True``:

  - association-requestor (Sta9): call :meth:`~UpperLayer.release_response` at once (AR-9
    sends A-RELEASE-RP, Sta11); the peer's A-RELEASE-RP then gives ``RELEASE_CONFIRM`` and
    ``CloseTransport`` (AR-3, Sta1).
  - association-acceptor (Sta10): do *not* answer yet (``release_response`` raises
    :class:`ProtocolError` in Sta10). The requestor's A-RELEASE-RP gives
    ``RELEASE_CONFIRM`` (AR-10, Sta12); only then call ``release_response`` (AR-4, Sta13)
    and wait for the requestor to close.

  In every case :attr:`UpperLayer.awaiting_release_response` is true exactly when the
  driver owes a ``release_response()`` call.
* Call :meth:`~UpperLayer.poll` whenever :attr:`~UpperLayer.artim_deadline` may have
  passed (ARTIM runs only in Sta2 and Sta13).
* The table has no A-ABORT request in Sta2 and Sta13 (no association the user knows of):
  to drop such a connection, close the socket and call :meth:`~UpperLayer.transport_closed`.

Empty cells of Table 9-10 raise :class:`ProtocolError`, except transport events in Sta1
(a PDU or the close of a connection the driver has just been told to close), which are
stale and ignored (``[]``).

Choices where the Standard leaves room, and where pacskit differs from pynetdicom 3.0.4
(``pynetdicom/fsm.py``) or DCMTK (``dcmnet/libsrc/dulfsm.cc``)
------------------------------------------------------------------------------------------
* Every cell follows PS3.8 Table 9-10. pynetdicom's ``TRANSITION_TABLE`` has the same
  cells. DCMTK differs in two, where pacskit follows the Standard: Sta5 + Evt6
  (A-ASSOCIATE-RQ while awaiting AC/RJ) is AA-8, not AE-4; Sta7 + Evt18 has no cell
  (DCMTK adds a timeout there).
* AA-8 sends A-ABORT with source 2 (service-provider) and the reason that applies (PS3.8
  9.3.8): 0x02 unexpected-PDU for a known PDU out of place, else the Evt19 reason (0x01
  unrecognized-PDU, 0x06 invalid-PDU-parameter value, ...), and indicates the same reason
  in ``PROVIDER_ABORT``. pynetdicom sends reason 0x00 and indicates 0x05; DCMTK always
  sends 0x02.
* AA-7 (Sta13) sends A-ABORT source 2 with the same reasons as AA-8.
* AA-1 for a PDU in Sta2 sends A-ABORT source 0 reason 0 as the Standard's text says
  (service-user source), as pynetdicom and DCMTK do. For Evt15 it sends the caller's
  source and reason.
* AE-6 finds an A-ASSOCIATE-RQ acceptable when bit 0 of its Protocol-version is set (PS3.8
  9.3.2: a receiver shall only test that bit); pynetdicom demands the value 0x0001. An
  unacceptable RQ is answered by A-ASSOCIATE-RJ result 1 (rejected-permanent), source 2
  (service-provider, ACSE related), reason 2 (protocol-version-not-supported).
* Sta13 waits for the peer to close the connection (Evt17, AR-5) or for ARTIM (Evt18,
  AA-2) as the table says; pynetdicom closes the socket itself once no data is pending.
* AA-3 issues ``ABORT`` with the PDU's source and reason whatever the source; the Standard
  calls it A-P-ABORT when the source is 2, which the driver reads from ``source``.
* Indications the Standard has no user for: Sta2 has no association the user knows of, so
  AA-2/AA-5 there issue ``ABORT`` (peer's A-ABORT, Evt16) or ``PROVIDER_ABORT`` reason 0
  (Evt17, Evt18); entries into Sta1 from Sta13 and from Sta4 (Evt15) issue
  ``TRANSPORT_CLOSED``. AA-4 indicates ``PROVIDER_ABORT`` reason 0 (reason-not-specified).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from types import MappingProxyType
from typing import TypeAlias

Buffer: TypeAlias = bytes | bytearray | memoryview


class _Described(IntEnum):
    """An IntEnum whose members carry their meaning in the Standard as ``__doc__``."""

    def __new__(cls, value: int, doc: str) -> _Described:
        member = int.__new__(cls, value)
        member._value_ = value
        member.__doc__ = doc
        return member


class State(_Described):
    """The states of the DICOM UL state machine, PS3.8 Table 9-1 (and 9-2..9-5)."""

    STA1 = 1, "Idle."
    STA2 = 2, "Transport connection open (awaiting A-ASSOCIATE-RQ PDU)."
    STA3 = 3, "Awaiting local A-ASSOCIATE response primitive (from local user)."
    STA4 = 4, "Awaiting transport connection opening to complete (from local transport service)."
    STA5 = 5, "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU."
    STA6 = 6, "Association established and ready for data transfer."
    STA7 = 7, "Awaiting A-RELEASE-RP PDU."
    STA8 = 8, "Awaiting local A-RELEASE response primitive (from local user)."
    STA9 = 9, "Release collision requestor side; awaiting A-RELEASE response (from local user)."
    STA10 = 10, "Release collision acceptor side; awaiting A-RELEASE-RP PDU."
    STA11 = 11, "Release collision requestor side; awaiting A-RELEASE-RP PDU."
    STA12 = 12, ("Release collision acceptor side; awaiting A-RELEASE response primitive "
                 "(from local user).")
    STA13 = 13, "Awaiting Transport Connection Close Indication (Association no longer exists)."


class Event(_Described):
    """The events of the DICOM UL state machine, PS3.8 Table 9-10 (event definitions)."""

    EVT1 = 1, "A-ASSOCIATE request (local user)."
    EVT2 = 2, "Transport connect confirmation (local transport service)."
    EVT3 = 3, "A-ASSOCIATE-AC PDU (received on transport connection)."
    EVT4 = 4, "A-ASSOCIATE-RJ PDU (received on transport connection)."
    EVT5 = 5, "Transport connection indication (local transport service)."
    EVT6 = 6, "A-ASSOCIATE-RQ PDU (received on transport connection)."
    EVT7 = 7, "A-ASSOCIATE response primitive (accept)."
    EVT8 = 8, "A-ASSOCIATE response primitive (reject)."
    EVT9 = 9, "P-DATA request primitive."
    EVT10 = 10, "P-DATA-TF PDU."
    EVT11 = 11, "A-RELEASE request primitive."
    EVT12 = 12, "A-RELEASE-RQ PDU (received on open transport connection)."
    EVT13 = 13, "A-RELEASE-RP PDU (received on transport connection)."
    EVT14 = 14, "A-RELEASE response primitive."
    EVT15 = 15, "A-ABORT request primitive."
    EVT16 = 16, "A-ABORT PDU (received on open transport connection)."
    EVT17 = 17, "Transport connection closed indication (local transport service)."
    EVT18 = 18, "ARTIM timer expired (Association reject/release timer)."
    EVT19 = 19, "Unrecognized or invalid PDU received."


class Primitive(Enum):
    """What an :class:`Indication` tells the service user (PS3.8 section 7)."""

    ASSOCIATE_INDICATION = "A-ASSOCIATE indication"
    """AE-6: an acceptable A-ASSOCIATE-RQ (``pdu``); answer with accept() or reject()."""
    ASSOCIATE_ACCEPTED = "A-ASSOCIATE confirmation (accept)"
    """AE-3: the peer's A-ASSOCIATE-AC (``pdu``)."""
    ASSOCIATE_REJECTED = "A-ASSOCIATE confirmation (reject)"
    """AE-4: the peer's A-ASSOCIATE-RJ (``pdu``)."""
    DATA = "P-DATA indication"
    """DT-2 / AR-6: the whole P-DATA-TF PDU (``pdu``), the object received, not a copy."""
    RELEASE_INDICATION = "A-RELEASE indication"
    """AR-2, or AR-8 with ``collision=True``: the peer's A-RELEASE-RQ (``pdu``)."""
    RELEASE_CONFIRM = "A-RELEASE confirmation"
    """AR-3 / AR-10: the peer's A-RELEASE-RP (``pdu``)."""
    ABORT = "A-ABORT indication"
    """AA-3: the peer's A-ABORT (``pdu``, with its ``source`` and ``reason``)."""
    PROVIDER_ABORT = "A-P-ABORT indication"
    """AA-8, AA-4, and AA-2/AA-5 in Sta2: ``reason`` is a PS3.8 9.3.8 provider reason."""
    TRANSPORT_CLOSED = "transport connection closed"
    """The connection ended with nothing else to tell (from Sta13, or Sta4 on abort)."""


@dataclass(frozen=True, slots=True)
class SendPdu:
    """Write these bytes (one whole PDU) to the peer."""

    data: Buffer


@dataclass(frozen=True, slots=True)
class OpenTransport:
    """AE-1: open the transport connection to the peer (PS3.8 9.1.2); report the result
    with ``transport_confirmed()`` (Evt2) or ``transport_closed()`` (Evt17)."""


@dataclass(frozen=True, slots=True)
class CloseTransport:
    """Close the transport connection (or release it if the peer already closed it)."""


@dataclass(frozen=True, slots=True)
class Indication:
    """A primitive for the service user: see :class:`Primitive` for each kind."""

    primitive: Primitive
    pdu: Buffer | None = None
    source: int | None = None
    reason: int | None = None
    collision: bool = False


Output: TypeAlias = SendPdu | OpenTransport | CloseTransport | Indication


class ProtocolError(Exception):
    """An event that PS3.8 Table 9-10 has no cell for in the current state: a service-user
    primitive out of place (e.g. ``send_data`` in Sta1) or a transport event the driver
    cannot have seen (e.g. a PDU in Sta4). The machine is left unchanged."""


_S = State
_E = Event

# PS3.8 Tables 9-6..9-9: the state each action leads to (None: the action decides).
_NEXT_STATE: dict[str, State | None] = {
    "AE-1": _S.STA4, "AE-2": _S.STA5, "AE-3": _S.STA6, "AE-4": _S.STA1,
    "AE-5": _S.STA2, "AE-6": None, "AE-7": _S.STA6, "AE-8": _S.STA13,
    "DT-1": _S.STA6, "DT-2": _S.STA6,
    "AR-1": _S.STA7, "AR-2": _S.STA8, "AR-3": _S.STA1, "AR-4": _S.STA13,
    "AR-5": _S.STA1, "AR-6": _S.STA7, "AR-7": _S.STA8, "AR-8": None,
    "AR-9": _S.STA11, "AR-10": _S.STA12,
    "AA-1": _S.STA13, "AA-2": _S.STA1, "AA-3": _S.STA1, "AA-4": _S.STA1,
    "AA-5": _S.STA1, "AA-6": _S.STA13, "AA-7": _S.STA13, "AA-8": _S.STA13,
}  # fmt: skip

_ASSOCIATED = (_S.STA6, _S.STA7, _S.STA8, _S.STA9, _S.STA10, _S.STA11, _S.STA12)
_PEER_PDU_ERROR_STATES = (_S.STA3, _S.STA5, *_ASSOCIATED)


def _cells(event: Event, **by_state: str) -> dict[tuple[State, Event], str]:
    return {(State[name.upper()], event): action for name, action in by_state.items()}


def _same(event: Event, action: str, states: tuple[State, ...]) -> dict[tuple[State, Event], str]:
    return {(state, event): action for state in states}


def _build_table() -> dict[tuple[State, Event], str]:
    table: dict[tuple[State, Event], str] = {}
    table |= _cells(_E.EVT1, sta1="AE-1")
    table |= _cells(_E.EVT2, sta4="AE-2")
    for event, in_sta5 in ((_E.EVT3, "AE-3"), (_E.EVT4, "AE-4")):
        table |= _same(event, "AA-8", _PEER_PDU_ERROR_STATES)
        table |= _cells(event, sta2="AA-1", sta5=in_sta5, sta13="AA-6")
    table |= _cells(_E.EVT5, sta1="AE-5")
    table |= _same(_E.EVT6, "AA-8", _PEER_PDU_ERROR_STATES)
    table |= _cells(_E.EVT6, sta2="AE-6", sta13="AA-7")
    table |= _cells(_E.EVT7, sta3="AE-7")
    table |= _cells(_E.EVT8, sta3="AE-8")
    table |= _cells(_E.EVT9, sta6="DT-1", sta8="AR-7")
    table |= _same(_E.EVT10, "AA-8", _PEER_PDU_ERROR_STATES)
    table |= _cells(_E.EVT10, sta2="AA-1", sta6="DT-2", sta7="AR-6", sta13="AA-6")
    table |= _cells(_E.EVT11, sta6="AR-1")
    table |= _same(_E.EVT12, "AA-8", _PEER_PDU_ERROR_STATES)
    table |= _cells(_E.EVT12, sta2="AA-1", sta6="AR-2", sta7="AR-8", sta13="AA-6")
    table |= _same(_E.EVT13, "AA-8", _PEER_PDU_ERROR_STATES)
    table |= _cells(_E.EVT13, sta2="AA-1", sta7="AR-3", sta10="AR-10", sta11="AR-3",
                    sta13="AA-6")
    table |= _cells(_E.EVT14, sta8="AR-4", sta9="AR-9", sta12="AR-4")
    table |= _same(_E.EVT15, "AA-1", _PEER_PDU_ERROR_STATES)
    table |= _cells(_E.EVT15, sta4="AA-2")
    table |= _same(_E.EVT16, "AA-3", _PEER_PDU_ERROR_STATES)
    table |= _cells(_E.EVT16, sta2="AA-2", sta13="AA-2")
    table |= _same(_E.EVT17, "AA-4", (_S.STA4, *_PEER_PDU_ERROR_STATES))
    table |= _cells(_E.EVT17, sta2="AA-5", sta13="AR-5")
    table |= _cells(_E.EVT18, sta2="AA-2", sta13="AA-2")
    table |= _same(_E.EVT19, "AA-8", _PEER_PDU_ERROR_STATES)
    table |= _cells(_E.EVT19, sta2="AA-1", sta13="AA-7")
    return table


TRANSITIONS: Mapping[tuple[State, Event], tuple[str, State | None]] = MappingProxyType(
    {cell: (action, _NEXT_STATE[action]) for cell, action in _build_table().items()}
)
"""PS3.8 Table 9-10: (state, event) -> (action, next state); the next state is None where
the action decides it (AE-6: Sta3 or Sta13; AR-8: Sta9 or Sta10). Empty cells are absent."""

_USER_EVENTS = frozenset((_E.EVT1, _E.EVT7, _E.EVT8, _E.EVT9, _E.EVT11, _E.EVT14, _E.EVT15))
_STALE_IN_IDLE = frozenset((_E.EVT3, _E.EVT4, _E.EVT6, _E.EVT10, _E.EVT12, _E.EVT13,
                            _E.EVT16, _E.EVT17, _E.EVT18, _E.EVT19))

# PS3.8 9.3.1: PDU types and the events their arrival is.
_PDU_EVENTS = {0x01: _E.EVT6, 0x02: _E.EVT3, 0x03: _E.EVT4, 0x04: _E.EVT10,
               0x05: _E.EVT12, 0x06: _E.EVT13, 0x07: _E.EVT16}
_FIXED_SIZE_PDUS = frozenset((0x03, 0x05, 0x06, 0x07))  # PDU-length 4 (PS3.8 9.3.4, 9.3.6-9.3.8)
_FIXED_SIZE = 10
_FIXED_LENGTH_FIELD = b"\x00\x00\x00\x04"
_ASSOCIATE_FIXED_PART = 74  # header and fields up to the variable items (PS3.8 9.3.2, 9.3.3)
_HEADER = 6

# PS3.8 9.3.8 A-ABORT source and provider reasons.
SOURCE_SERVICE_USER = 0x00
SOURCE_SERVICE_PROVIDER = 0x02
REASON_NOT_SPECIFIED = 0x00
REASON_UNRECOGNIZED_PDU = 0x01
REASON_UNEXPECTED_PDU = 0x02
REASON_UNRECOGNIZED_PARAMETER = 0x04
REASON_UNEXPECTED_PARAMETER = 0x05
REASON_INVALID_PARAMETER_VALUE = 0x06
_PROVIDER_REASONS = frozenset((0x00, 0x01, 0x02, 0x04, 0x05, 0x06))

A_RELEASE_RQ = b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"
"""PS3.8 9.3.6: the A-RELEASE-RQ PDU."""
A_RELEASE_RP = b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00"
"""PS3.8 9.3.7: the A-RELEASE-RP PDU."""
# PS3.8 9.3.4: rejected-permanent, service-provider (ACSE), protocol-version-not-supported.
_RJ_PROTOCOL_VERSION = b"\x03\x00\x00\x00\x00\x04\x00\x01\x02\x02"


def a_abort(source: int, reason: int) -> bytes:
    """The A-ABORT PDU of PS3.8 9.3.8 with this source and reason/diagnostic."""
    return bytes((0x07, 0, 0, 0, 0, 4, 0, 0, source, reason))


_STA1 = _S.STA1
_STA6 = _S.STA6
_DATA = Primitive.DATA
_CLOSE = CloseTransport()

_Action = Callable[["UpperLayer", Event, Buffer, int, int], list[Output]]


class UpperLayer:
    """One association's DICOM UL state machine (PS3.8 9.2), driven by method calls.

    ``artim_timeout`` is the ARTIM timer in seconds, ``clock`` the time source of
    :attr:`artim_deadline` and :meth:`poll`, ``max_pdu_length`` the largest P-DATA-TF
    PDU-length we accept (the Maximum Length we announced, PS3.8 D.1; 0 = no limit).
    """

    def __init__(self, *, artim_timeout: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 max_pdu_length: int = 0) -> None:
        if artim_timeout < 0:
            raise ValueError("artim_timeout must not be negative")
        if max_pdu_length < 0:
            raise ValueError("max_pdu_length must not be negative (0 = no limit)")
        self.artim_timeout = artim_timeout
        self.max_pdu_length = max_pdu_length
        self._clock = clock
        self.state: State = _STA1
        """The current state, Sta1 at first."""
        self.is_requestor: bool | None = None
        """True after Evt1 (we requested), False after Evt5 (the peer connected to us)."""
        self.artim_deadline: float | None = None
        """``clock()`` time at which ARTIM expires; None while ARTIM is stopped."""
        self._associate_rq: Buffer = b""

    @property
    def awaiting_release_response(self) -> bool:
        """True when the driver must call :meth:`release_response` (Sta8, Sta9, Sta12)."""
        return self.state in (_S.STA8, _S.STA9, _S.STA12)

    # -- service-user primitives ------------------------------------------------------

    def associate_request(self, pdu: bytes) -> list[Output]:
        """Evt1, A-ASSOCIATE request: ``pdu`` is the encoded A-ASSOCIATE-RQ, sent by AE-2
        once the connection is open. Sta1 -> AE-1 (``OpenTransport``) -> Sta4."""
        return self._fire(_E.EVT1, pdu)

    def accept(self, pdu: bytes) -> list[Output]:
        """Evt7, A-ASSOCIATE response (accept): AE-7 sends ``pdu``, the A-ASSOCIATE-AC."""
        return self._fire(_E.EVT7, pdu)

    def reject(self, pdu: bytes) -> list[Output]:
        """Evt8, A-ASSOCIATE response (reject): AE-8 sends ``pdu``, the A-ASSOCIATE-RJ,
        and starts ARTIM (Sta13: the requestor closes the connection)."""
        return self._fire(_E.EVT8, pdu)

    def send_data(self, pdu: Buffer) -> list[Output]:
        """Evt9, P-DATA request: DT-1 (Sta6) or AR-7 (Sta8) sends ``pdu``, a whole
        P-DATA-TF PDU, as given."""
        return self._fire(_E.EVT9, pdu)

    def release_request(self) -> list[Output]:
        """Evt11, A-RELEASE request: AR-1 sends A-RELEASE-RQ (Sta6 -> Sta7)."""
        return self._fire(_E.EVT11)

    def release_response(self) -> list[Output]:
        """Evt14, A-RELEASE response: AR-4 (Sta8, Sta12: send A-RELEASE-RP, start ARTIM,
        Sta13) or AR-9 (Sta9: send A-RELEASE-RP, Sta11). See the module's notes on
        release collision."""
        return self._fire(_E.EVT14)

    def abort(self, source: int = SOURCE_SERVICE_USER,
              reason: int = REASON_NOT_SPECIFIED) -> list[Output]:
        """Evt15, A-ABORT request: AA-1 sends A-ABORT with ``source`` and ``reason``
        (PS3.8 9.3.8: source 0 with reason 0, or source 2 with a provider reason) and
        (re)starts ARTIM; in Sta4, AA-2 closes the connection being opened."""
        if source == SOURCE_SERVICE_USER:
            if reason != REASON_NOT_SPECIFIED:
                raise ValueError("an A-ABORT from the service-user has reason 0x00")
        elif source != SOURCE_SERVICE_PROVIDER or reason not in _PROVIDER_REASONS:
            raise ValueError(f"invalid A-ABORT source/reason 0x{source:02X}/0x{reason:02X}")
        return self._fire(_E.EVT15, b"", source, reason)

    # -- transport and provider events ------------------------------------------------

    def transport_confirmed(self) -> list[Output]:
        """Evt2, the connection AE-1 asked for is open: AE-2 sends the A-ASSOCIATE-RQ."""
        return self._fire(_E.EVT2)

    def transport_indication(self) -> list[Output]:
        """Evt5, a peer connected to us: AE-5 starts ARTIM (Sta2)."""
        return self._fire(_E.EVT5)

    def pdu_received(self, pdu_type: int, pdu: Buffer) -> list[Output]:
        """A whole PDU (header included) of type ``pdu_type`` arrived (PS3.8 9.3.1).

        0x01 -> Evt6, 0x02 -> Evt3, 0x03 -> Evt4, 0x04 -> Evt10, 0x05 -> Evt12,
        0x06 -> Evt13, 0x07 -> Evt16 (source and reason read from it). Evt19 instead for
        an unknown type (reason 0x01), a P-DATA-TF longer than ``max_pdu_length``, an
        A-ASSOCIATE-RJ/A-RELEASE/A-ABORT whose length is not 4, or an A-ASSOCIATE-RQ/AC
        shorter than its fixed fields (reason 0x06).
        """
        if pdu_type == 0x04 and self.state is _STA6:
            limit = self.max_pdu_length
            if limit and len(pdu) - _HEADER > limit:
                return self._fire(_E.EVT19, b"", 0, REASON_INVALID_PARAMETER_VALUE)
            return [Indication(_DATA, pdu)]
        event = _PDU_EVENTS.get(pdu_type)
        if event is None:
            return self._fire(_E.EVT19, b"", 0, REASON_UNRECOGNIZED_PDU)
        if not _well_formed(pdu_type, pdu, self.max_pdu_length):
            return self._fire(_E.EVT19, b"", 0, REASON_INVALID_PARAMETER_VALUE)
        if event is _E.EVT16:
            return self._fire(event, pdu, pdu[8], pdu[9])
        return self._fire(event, pdu, 0, REASON_UNEXPECTED_PDU)

    def invalid_pdu(self, reason: int) -> list[Output]:
        """Evt19 for a PDU the driver found malformed; ``reason`` is a PS3.8 9.3.8
        provider reason (0x01 unrecognized PDU, 0x02 unexpected PDU, 0x04 unrecognized
        PDU parameter, 0x05 unexpected PDU parameter, 0x06 invalid PDU parameter value)."""
        if reason not in _PROVIDER_REASONS:
            raise ValueError(f"0x{reason:02X} is not a PS3.8 9.3.8 provider reason")
        return self._fire(_E.EVT19, b"", 0, reason)

    def transport_closed(self) -> list[Output]:
        """Evt17, the connection closed (or failed to open, in Sta4)."""
        return self._fire(_E.EVT17)

    def poll(self, now: float | None = None) -> list[Output]:
        """Evt18 if ARTIM has expired at ``now`` (default ``clock()``), else ``[]``."""
        deadline = self.artim_deadline
        if deadline is None:
            return []
        if now is None:
            now = self._clock()
        if now < deadline:
            return []
        return self._fire(_E.EVT18)

    # -- the machine --------------------------------------------------------------------

    def _fire(self, event: Event, pdu: Buffer = b"", source: int = 0,
              reason: int = 0) -> list[Output]:
        cell = TRANSITIONS.get((self.state, event))
        if cell is None:
            if self.state is _STA1 and event in _STALE_IN_IDLE:
                return []
            if event is _E.EVT18:
                return []
            kind = "service-user primitive" if event in _USER_EVENTS else "transport event"
            raise ProtocolError(f"{kind} {event.name} is not allowed in {self.state.name} "
                                "(PS3.8 Table 9-10)")
        action, next_state = cell
        outputs = _ACTIONS[action](self, event, pdu, source, reason)
        if next_state is not None:
            self.state = next_state
        return outputs

    def _start_artim(self) -> None:
        self.artim_deadline = self._clock() + self.artim_timeout

    def _finish(self, indication: Indication) -> list[Output]:
        self.artim_deadline = None
        self._associate_rq = b""
        return [indication, _CLOSE]

    # Tables 9-6..9-9; each action returns its outputs, the table moves the state.

    def _ae_1(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        self.is_requestor = True
        self._associate_rq = pdu
        return [OpenTransport()]

    def _ae_2(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        request, self._associate_rq = self._associate_rq, b""
        return [SendPdu(request)]

    def _ae_3(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return [Indication(Primitive.ASSOCIATE_ACCEPTED, pdu)]

    def _ae_4(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return self._finish(Indication(Primitive.ASSOCIATE_REJECTED, pdu))

    def _ae_5(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        self.is_requestor = False
        self._start_artim()
        return []

    def _ae_6(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        self.artim_deadline = None
        if pdu[7] & 0x01:
            self.state = _S.STA3
            return [Indication(Primitive.ASSOCIATE_INDICATION, pdu)]
        self._start_artim()
        self.state = _S.STA13
        return [SendPdu(_RJ_PROTOCOL_VERSION)]

    def _send_given(self, event: Event, pdu: Buffer, source: int,
                    reason: int) -> list[Output]:
        return [SendPdu(pdu)]

    def _ae_8(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        self._start_artim()
        return [SendPdu(pdu)]

    def _indicate_data(self, event: Event, pdu: Buffer, source: int,
                       reason: int) -> list[Output]:
        return [Indication(_DATA, pdu)]

    def _ar_1(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return [SendPdu(A_RELEASE_RQ)]

    def _ar_2(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return [Indication(Primitive.RELEASE_INDICATION, pdu)]

    def _ar_3(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return self._finish(Indication(Primitive.RELEASE_CONFIRM, pdu))

    def _ar_4(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        self._start_artim()
        return [SendPdu(A_RELEASE_RP)]

    def _ar_5(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return self._finish(Indication(Primitive.TRANSPORT_CLOSED))

    def _ar_8(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        self.state = _S.STA9 if self.is_requestor else _S.STA10
        return [Indication(Primitive.RELEASE_INDICATION, pdu, collision=True)]

    def _ar_9(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return [SendPdu(A_RELEASE_RP)]

    def _ar_10(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return [Indication(Primitive.RELEASE_CONFIRM, pdu)]

    def _aa_1(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        if event is not _E.EVT15:
            source, reason = SOURCE_SERVICE_USER, REASON_NOT_SPECIFIED
        self._start_artim()
        return [SendPdu(a_abort(source, reason))]

    def _aa_2(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        if self.state is not _S.STA2:
            return self._finish(Indication(Primitive.TRANSPORT_CLOSED))
        if event is _E.EVT16:
            return self._finish(Indication(Primitive.ABORT, pdu, source, reason))
        return self._finish(Indication(Primitive.PROVIDER_ABORT, reason=REASON_NOT_SPECIFIED))

    def _aa_3(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return self._finish(Indication(Primitive.ABORT, pdu, source, reason))

    def _aa_4(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return self._finish(Indication(Primitive.PROVIDER_ABORT, reason=REASON_NOT_SPECIFIED))

    def _aa_6(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return []

    def _aa_7(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        return [SendPdu(a_abort(SOURCE_SERVICE_PROVIDER, reason))]

    def _aa_8(self, event: Event, pdu: Buffer, source: int, reason: int) -> list[Output]:
        self._start_artim()
        return [SendPdu(a_abort(SOURCE_SERVICE_PROVIDER, reason)),
                Indication(Primitive.PROVIDER_ABORT, reason=reason)]


def _well_formed(pdu_type: int, pdu: Buffer, max_pdu_length: int) -> bool:
    size = len(pdu)
    if pdu_type in _FIXED_SIZE_PDUS:
        return size == _FIXED_SIZE and pdu[2:6] == _FIXED_LENGTH_FIELD
    if pdu_type == 0x04:
        return size >= _HEADER and not (max_pdu_length and size - _HEADER > max_pdu_length)
    return size >= _ASSOCIATE_FIXED_PART


_ACTIONS: dict[str, _Action] = {
    "AE-1": UpperLayer._ae_1, "AE-2": UpperLayer._ae_2, "AE-3": UpperLayer._ae_3,
    "AE-4": UpperLayer._ae_4, "AE-5": UpperLayer._ae_5, "AE-6": UpperLayer._ae_6,
    "AE-7": UpperLayer._send_given, "AE-8": UpperLayer._ae_8,
    "DT-1": UpperLayer._send_given, "DT-2": UpperLayer._indicate_data,
    "AR-1": UpperLayer._ar_1, "AR-2": UpperLayer._ar_2, "AR-3": UpperLayer._ar_3,
    "AR-4": UpperLayer._ar_4, "AR-5": UpperLayer._ar_5, "AR-6": UpperLayer._indicate_data,
    "AR-7": UpperLayer._send_given, "AR-8": UpperLayer._ar_8, "AR-9": UpperLayer._ar_9,
    "AR-10": UpperLayer._ar_10,
    "AA-1": UpperLayer._aa_1, "AA-2": UpperLayer._aa_2, "AA-3": UpperLayer._aa_3,
    "AA-4": UpperLayer._aa_4, "AA-5": UpperLayer._aa_4, "AA-6": UpperLayer._aa_6,
    "AA-7": UpperLayer._aa_7, "AA-8": UpperLayer._aa_8,
}  # fmt: skip
