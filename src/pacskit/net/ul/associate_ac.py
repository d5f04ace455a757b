"""The acceptor's answer to an A-ASSOCIATE-RQ, decoded by pacskit: the A-ASSOCIATE-AC
(PS3.8 9.3.3) into :class:`AssociateAc`, the A-ASSOCIATE-RJ (9.3.4) into
:class:`Rejection`.

Every length is checked against what holds it, and the PDU against its PDU-length field:
a malformed PDU raises :class:`~pacskit.net.assembly.ProtocolViolation` (the association
is then aborted), never an IndexError or struct.error. Items and sub-items of a type not
known here are skipped (PS3.8 9.3.1), as are those an A-ASSOCIATE-AC does not carry
(presentation context items of a request, User Identity 0x58, SOP Class Common Extended
Negotiation). A second item where the PDU holds one (application context, user
information, a presentation context ID, a sub-item of the user information item) is
malformed; but a SOP class's role selection or extended negotiation may come again as it
was (Orthanc answers one role selection per presentation context of the SOP class), not
otherwise. Missing items a requestor can do without are
not: no user information item reads as no maximum length (0, PS3.8 D.1) and no
implementation class UID, as pynetdicom reads it.

For a well-formed AC every field is what pynetdicom 3.0.4's ``A_ASSOCIATE_AC`` decodes
(``tests/unit/test_associate_codec.py`` compares them).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from pacskit.net.assembly import ProtocolViolation
from pacskit.net.ul.associate_rq import (
    APPLICATION_CONTEXT_ITEM,
    ASYNCHRONOUS_OPERATIONS_WINDOW,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    MAXIMUM_LENGTH,
    PRESENTATION_CONTEXT_AC_ITEM,
    ROLE_SELECTION,
    SOP_CLASS_EXTENDED,
    TRANSFER_SYNTAX_SUB_ITEM,
    USER_IDENTITY_AC,
    USER_INFORMATION_ITEM,
)

A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
FIXED_PART = 74
"""PDU header and fixed fields before the variable items (PS3.8 Table 9-17)."""
ACCEPTANCE = 0x00
RESULTS = {0: "acceptance", 1: "user-rejection", 2: "no-reason (provider rejection)",
           3: "abstract-syntax-not-supported (provider rejection)",
           4: "transfer-syntaxes-not-supported (provider rejection)"}
"""PS3.8 Table 9-18, Result/Reason of a presentation context item."""
MAX_UID = 64
MIN_USEFUL_MAX_LENGTH = 7
"""The smallest Maximum Length Received that holds a PDV with one byte of data (PS3.8 9.3.5.1)."""

# PS3.8 Table 9-21: (source, reason) -> meaning
REJECT_REASONS = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised",
    (1, 7): "called AE title not recognised",
    (2, 1): "no reason given (ACSE)",
    (2, 2): "protocol version not supported",
    (3, 0): "reserved",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}


@dataclass(frozen=True)
class ContextResult:
    """A presentation context item of the AC (PS3.8 9.3.3.2, Table 9-18): its ID, its
    result, and the transfer syntax accepted (None when not accepted and not given: it
    is not tested then)."""

    context_id: int
    result: int
    transfer_syntax: str | None


@dataclass(frozen=True)
class AssociateAc:
    """A decoded A-ASSOCIATE-AC (PS3.8 9.3.3) and its user information (PS3.7 D.3.3).

    Attributes:
        called_ae_title, calling_ae_title: the reserved fields that echo the request's,
            not tested (Table 9-17), without their padding.
        max_length: Maximum Length Received (PS3.8 D.1); 0: none given, or no limit.
        window: Asynchronous Operations Window (invoked, performed), if answered.
        roles: SCP/SCU Role Selection answered, by SOP class: (SCU, SCP).
        extended: SOP Class Extended Negotiation answered, by SOP class.
        identity_response: the User Identity server response (0x59), if any.
    """

    protocol_version: int
    called_ae_title: str
    calling_ae_title: str
    application_context_name: str | None
    contexts: tuple[ContextResult, ...]
    max_length: int = 0
    implementation_class_uid: str = ""
    implementation_version_name: str = ""
    window: tuple[int, int] | None = None
    roles: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    extended: dict[str, bytes] = field(default_factory=dict)
    identity_response: bytes | None = None


@dataclass(frozen=True)
class Rejection:
    """An A-ASSOCIATE-RJ (PS3.8 9.3.4, Table 9-21): result 1 permanent, 2 transient."""

    result: int
    source: int
    reason: int

    @property
    def meaning(self) -> str:
        return REJECT_REASONS.get((self.source, self.reason), f"reason {self.reason}")

    def encode(self) -> bytes:
        return struct.pack(">BBIBBBB", A_ASSOCIATE_RJ, 0, 4, 0, self.result, self.source, self.reason)

    @classmethod
    def decode(cls, pdu: bytes | bytearray) -> Rejection:
        """Raises: ProtocolViolation: not a 10-byte A-ASSOCIATE-RJ."""
        if len(pdu) != 10 or pdu[0] != A_ASSOCIATE_RJ or pdu[2:6] != b"\0\0\0\x04":
            raise ProtocolViolation(f"an A-ASSOCIATE-RJ is 10 bytes with PDU-length 4, not {bytes(pdu[:10]).hex()}")
        return cls(pdu[7], pdu[8], pdu[9])


def decode_ac(pdu: bytes | bytearray | memoryview) -> AssociateAc:
    """The A-ASSOCIATE-AC ``pdu`` (header included).

    Raises:
        ProtocolViolation: the PDU is malformed (the message says where).
    """
    view = memoryview(pdu).cast("B")
    if len(view) < FIXED_PART:
        raise ProtocolViolation(f"an A-ASSOCIATE-AC of {len(view)} bytes, shorter than its {FIXED_PART} fixed ones")
    if view[0] != A_ASSOCIATE_AC:
        raise ProtocolViolation(f"PDU type 0x{view[0]:02X} is not an A-ASSOCIATE-AC")
    length = struct.unpack_from(">I", view, 2)[0]
    if length != len(view) - 6:
        raise ProtocolViolation(f"the A-ASSOCIATE-AC's PDU-length field says {length} bytes, {len(view) - 6} follow")
    seen: set[str] = set()
    name: str | None = None
    contexts: dict[int, ContextResult] = {}
    user = _UserInformation()
    for item_type, body in _items(view, FIXED_PART, "the A-ASSOCIATE-AC"):
        if item_type == APPLICATION_CONTEXT_ITEM:
            _once(seen, "application context item")
            name = _uid(body, "the application context name")
        elif item_type == PRESENTATION_CONTEXT_AC_ITEM:
            context = _presentation_context(body)
            if context.context_id in contexts:
                raise ProtocolViolation(f"two presentation context items with ID {context.context_id}")
            contexts[context.context_id] = context
        elif item_type == USER_INFORMATION_ITEM:
            _once(seen, "user information item")
            user = _UserInformation.read(body)
    return AssociateAc(struct.unpack_from(">H", view, 6)[0], _text(view[10:26]), _text(view[26:42]), name,
                       tuple(contexts.values()), **vars(user))


def _presentation_context(body: memoryview) -> ContextResult:
    if len(body) < 4:
        raise ProtocolViolation(f"a presentation context item of {len(body)} bytes, shorter than its 4 fixed ones")
    context_id, result = body[0], body[2]
    if result not in RESULTS:
        raise ProtocolViolation(f"presentation context {context_id} has result {result}, not one of PS3.8 Table 9-18")
    syntaxes = [sub for kind, sub in _items(body, 4, f"presentation context item {context_id}")
                if kind == TRANSFER_SYNTAX_SUB_ITEM]
    if len(syntaxes) > 1:
        raise ProtocolViolation(f"presentation context {context_id} has {len(syntaxes)} transfer syntax sub-items")
    if result != ACCEPTANCE:
        syntax = _text(syntaxes[0]) if syntaxes else None
        return ContextResult(context_id, result, syntax or None)
    if not syntaxes:
        raise ProtocolViolation(f"presentation context {context_id} is accepted without a transfer syntax")
    return ContextResult(context_id, result, _uid(syntaxes[0], f"the transfer syntax of presentation context {context_id}"))


@dataclass
class _UserInformation:
    """The sub-items of the user information item (PS3.8 9.3.3.3, PS3.7 D.3.3), read into
    fields named as :class:`AssociateAc`'s, which takes them all."""

    max_length: int = 0
    implementation_class_uid: str = ""
    implementation_version_name: str = ""
    window: tuple[int, int] | None = None
    roles: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    extended: dict[str, bytes] = field(default_factory=dict)
    identity_response: bytes | None = None

    @classmethod
    def read(cls, body: memoryview) -> _UserInformation:
        found = cls()
        seen: set[str] = set()
        for kind, sub in _items(body, 0, "the user information item"):
            if kind == MAXIMUM_LENGTH:
                _once(seen, "maximum length sub-item")
                found.max_length = _max_length(sub)
            elif kind == IMPLEMENTATION_CLASS_UID:
                _once(seen, "implementation class UID sub-item")
                found.implementation_class_uid = _text(sub)
            elif kind == IMPLEMENTATION_VERSION_NAME:
                _once(seen, "implementation version name sub-item")
                found.implementation_version_name = _text(sub)
            elif kind == ASYNCHRONOUS_OPERATIONS_WINDOW:
                _once(seen, "asynchronous operations window sub-item")
                if len(sub) != 4:
                    raise ProtocolViolation(f"an asynchronous operations window sub-item of {len(sub)} bytes, not 4")
                found.window = struct.unpack(">HH", sub)
            elif kind == ROLE_SELECTION:
                found.add_role(sub)
            elif kind == SOP_CLASS_EXTENDED:
                uid, rest = _uid_field(sub, "a SOP class extended negotiation sub-item")
                if found.extended.get(uid, rest) != rest:
                    raise ProtocolViolation(f"two SOP class extended negotiation sub-items for {uid} that disagree")
                found.extended[uid] = bytes(rest)
            elif kind == USER_IDENTITY_AC:
                _once(seen, "user identity sub-item")
                if len(sub) < 2 or struct.unpack_from(">H", sub)[0] != len(sub) - 2:
                    raise ProtocolViolation("the user identity sub-item's server response length is not its length")
                found.identity_response = bytes(sub[2:])
        return found

    def add_role(self, sub: memoryview) -> None:
        uid, rest = _uid_field(sub, "an SCP/SCU role selection sub-item")
        if len(rest) != 2 or rest[0] > 1 or rest[1] > 1:
            raise ProtocolViolation(f"the SCP/SCU role selection sub-item for {uid} does not end with two roles "
                                    "of 0 or 1")
        roles = (bool(rest[0]), bool(rest[1]))
        if self.roles.get(uid, roles) != roles:
            raise ProtocolViolation(f"two SCP/SCU role selection sub-items for {uid} that disagree")
        self.roles[uid] = roles


def _items(view: memoryview, start: int, where: str) -> Iterator[tuple[int, memoryview]]:
    """The (type, body) of each item from ``start`` to the end of ``view`` (PS3.8 9.3.1)."""
    offset, end = start, len(view)
    while offset < end:
        if end - offset < 4:
            raise ProtocolViolation(f"{where} ends inside an item header ({end - offset} bytes left)")
        item_type = view[offset]
        length = struct.unpack_from(">H", view, offset + 2)[0]
        if offset + 4 + length > end:
            raise ProtocolViolation(f"item 0x{item_type:02X} of {length} bytes runs past the end of {where} "
                                    f"({end - offset - 4} bytes left)")
        yield item_type, view[offset + 4:offset + 4 + length]
        offset += 4 + length


def _once(seen: set[str], what: str) -> None:
    if what in seen:
        raise ProtocolViolation(f"a second {what} in the A-ASSOCIATE-AC")
    seen.add(what)


def _max_length(sub: memoryview) -> int:
    if len(sub) != 4:
        raise ProtocolViolation(f"a maximum length sub-item of {len(sub)} bytes, not 4")
    value = int(struct.unpack(">I", sub)[0])
    if 0 < value < MIN_USEFUL_MAX_LENGTH:
        raise ProtocolViolation(f"a maximum length of {value} bytes cannot hold a presentation data value")
    return value


def _uid_field(sub: memoryview, what: str) -> tuple[str, memoryview]:
    if len(sub) < 2 or struct.unpack_from(">H", sub)[0] > len(sub) - 2:
        raise ProtocolViolation(f"{what} whose UID length runs past its end")
    size = struct.unpack_from(">H", sub)[0]
    return _uid(sub[2:2 + size], what), sub[2 + size:]


def _uid(raw: memoryview, what: str) -> str:
    """A UID field (PS3.8 Annex F, PS3.5 9.1): at most 64 characters, components of
    digits without a leading zero, separated by dots; one trailing NUL allowed."""
    value = bytes(raw)
    if value.endswith(b"\0"):
        value = value[:-1]
    if not value or len(value) > MAX_UID or value.strip(b"0123456789.") \
            or not all(part and (part == b"0" or part[:1] != b"0") for part in value.split(b".")):
        raise ProtocolViolation(f"{what} is not a UID: {value[:MAX_UID + 1]!r}")
    return value.decode("ascii")


def _text(raw: memoryview) -> str:
    return bytes(raw).decode("ascii", "replace").strip(" \0")
