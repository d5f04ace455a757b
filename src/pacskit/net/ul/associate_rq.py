"""The A-ASSOCIATE-RQ PDU a requestor sends (PS3.8 9.3.2), encoded by pacskit: the
application context item (9.3.2.1), the presentation context items with their abstract
and transfer syntax sub-items (9.3.2.2), and the user information item (9.3.2.3) with its
sub-items: Maximum Length (PS3.8 Annex D.1), Implementation Class UID and Version Name
(PS3.7 D.3.3.2), Asynchronous Operations Window (D.3.3.3), SCP/SCU Role Selection
(D.3.3.4), SOP Class Extended and Common Extended Negotiation (D.3.3.5, D.3.3.6) and
User Identity (D.3.3.7).

Every byte is as pynetdicom 3.0.4's ``A_ASSOCIATE_RQ`` encodes the same request
(``tests/unit/test_associate_codec.py`` compares them); a value that does not fit its
field raises :class:`ValueError` instead of being cut.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pacskit.net.ul.user_identity import UserIdentity

A_ASSOCIATE_RQ = 0x01
PROTOCOL_VERSION = 0x0001
APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"
"""The DICOM Application Context Name (PS3.7 A.2.1)."""
DEFAULT_TRANSFER_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99",
                             "1.2.840.10008.1.2.2")
"""Implicit VR Little Endian, Explicit VR Little Endian, Deflated Explicit VR Little Endian,
Explicit VR Big Endian: what pynetdicom's ``build_context`` proposes by default."""

APPLICATION_CONTEXT_ITEM = 0x10
PRESENTATION_CONTEXT_RQ_ITEM = 0x20
PRESENTATION_CONTEXT_AC_ITEM = 0x21
ABSTRACT_SYNTAX_SUB_ITEM = 0x30
TRANSFER_SYNTAX_SUB_ITEM = 0x40
USER_INFORMATION_ITEM = 0x50
MAXIMUM_LENGTH = 0x51
IMPLEMENTATION_CLASS_UID = 0x52
ASYNCHRONOUS_OPERATIONS_WINDOW = 0x53
ROLE_SELECTION = 0x54
IMPLEMENTATION_VERSION_NAME = 0x55
SOP_CLASS_EXTENDED = 0x56
SOP_CLASS_COMMON_EXTENDED = 0x57
USER_IDENTITY_RQ = 0x58
USER_IDENTITY_AC = 0x59

MAX_ITEM_LENGTH = 0xFFFF
MAX_CONTEXTS = 128
_FIXED = struct.Struct(">BBIHH16s16s32s")


@dataclass(frozen=True)
class ProposedContext:
    """A presentation context of the request (PS3.8 9.3.2.2): an odd ID from 1 to 255,
    one abstract syntax, one or more transfer syntaxes, and the SCP/SCU roles proposed
    for its abstract syntax (None: no role selection)."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: tuple[str, ...]
    scu_role: bool | None = None
    scp_role: bool | None = None


@dataclass(frozen=True)
class Context:
    """A presentation context to propose, before it has an ID: what a service asks for."""

    abstract_syntax: str
    transfer_syntax: tuple[str, ...] = DEFAULT_TRANSFER_SYNTAXES


@dataclass(frozen=True)
class SopClassExtended:
    """SOP Class Extended Negotiation (PS3.7 D.3.3.5, sub-item 0x56)."""

    sop_class_uid: str
    information: bytes

    def encode(self) -> bytes:
        return item(SOP_CLASS_EXTENDED, _uid_field(self.sop_class_uid) + self.information)


@dataclass(frozen=True)
class SopClassCommonExtended:
    """SOP Class Common Extended Negotiation (PS3.7 D.3.3.6, sub-item 0x57, version 0)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: tuple[str, ...] = ()

    def encode(self) -> bytes:
        related = b"".join(_uid_field(uid) for uid in self.related_general_sop_classes)
        body = _uid_field(self.sop_class_uid) + _uid_field(self.service_class_uid) + _length(related) + related
        return item(SOP_CLASS_COMMON_EXTENDED, body)


ExtendedItem = SopClassExtended | SopClassCommonExtended


@dataclass(frozen=True)
class AssociateRq:
    """An A-ASSOCIATE-RQ (PS3.8 9.3.2, Table 9-11), as :meth:`encode` puts it on the wire.

    The user information sub-items go in this order: Maximum Length, Implementation
    Class UID, Implementation Version Name (if any), Asynchronous Operations Window (if
    any), one SCP/SCU Role Selection per SOP class of ``roles`` ((SCU, SCP) proposed),
    User Identity (if any), then ``extended``.
    """

    calling_ae_title: str
    called_ae_title: str
    contexts: Sequence[ProposedContext]
    max_length: int
    implementation_class_uid: str
    implementation_version_name: str = ""
    window: tuple[int, int] | None = None
    roles: Mapping[str, tuple[bool, bool]] = field(default_factory=dict)
    identity: UserIdentity | None = None
    extended: Sequence[ExtendedItem] = ()
    application_context_name: str = APPLICATION_CONTEXT_NAME

    def encode(self) -> bytes:
        """The PDU.

        Raises:
            ValueError: a value that does not fit the PDU (an AE title of more than 16
                characters or none, a context ID not odd from 1 to 255, more than 128
                contexts, an item longer than 65535 bytes).
        """
        if not 1 <= len(self.contexts) <= MAX_CONTEXTS:
            raise ValueError(f"an A-ASSOCIATE-RQ proposes 1 to {MAX_CONTEXTS} presentation contexts, "
                             f"not {len(self.contexts)}")
        items = [item(APPLICATION_CONTEXT_ITEM, _ascii(self.application_context_name)),
                 *(presentation_context(cx) for cx in self.contexts),
                 item(USER_INFORMATION_ITEM, b"".join(self.user_information()))]
        body = b"".join(items)
        return _FIXED.pack(A_ASSOCIATE_RQ, 0, 68 + len(body), PROTOCOL_VERSION, 0,
                           ae_title(self.called_ae_title), ae_title(self.calling_ae_title), b"") + body

    def user_information(self) -> list[bytes]:
        """The user information sub-items (PS3.8 9.3.2.3, PS3.7 D.3.3), encoded."""
        if not 0 <= self.max_length <= 0xFFFFFFFF:
            raise ValueError(f"a maximum length of {self.max_length} does not fit 4 bytes")
        items = [item(MAXIMUM_LENGTH, struct.pack(">I", self.max_length)),
                 item(IMPLEMENTATION_CLASS_UID, _ascii(self.implementation_class_uid))]
        if self.implementation_version_name:
            if len(self.implementation_version_name) > 16:
                raise ValueError("an Implementation Version Name has at most 16 characters")
            items.append(item(IMPLEMENTATION_VERSION_NAME, _ascii(self.implementation_version_name)))
        if self.window is not None:
            items.append(item(ASYNCHRONOUS_OPERATIONS_WINDOW, struct.pack(">HH", *self.window)))
        for uid, (scu, scp) in self.roles.items():
            items.append(item(ROLE_SELECTION, _uid_field(uid) + bytes((int(scu), int(scp)))))
        if self.identity is not None:
            items.append(identity_item(self.identity))
        items.extend(extended.encode() for extended in self.extended)
        return items


def presentation_context(context: ProposedContext) -> bytes:
    """A presentation context item of the request (PS3.8 9.3.2.2, Table 9-13)."""
    if not (1 <= context.context_id <= 255 and context.context_id % 2):
        raise ValueError(f"a presentation context ID is odd, from 1 to 255, not {context.context_id}")
    if not context.transfer_syntax:
        raise ValueError(f"presentation context {context.context_id} proposes no transfer syntax")
    sub_items = [item(ABSTRACT_SYNTAX_SUB_ITEM, _ascii(context.abstract_syntax)),
                 *(item(TRANSFER_SYNTAX_SUB_ITEM, _ascii(syntax)) for syntax in context.transfer_syntax)]
    return item(PRESENTATION_CONTEXT_RQ_ITEM, bytes((context.context_id, 0, 0, 0)) + b"".join(sub_items))


def identity_item(identity: UserIdentity) -> bytes:
    """The User Identity sub-item of the request (PS3.7 D.3.3.7.1, Table D.3-14); the
    secondary field is sent (empty) whatever the type, as pynetdicom does."""
    body = (bytes((identity.kind, int(identity.response_requested))) + _length(identity.primary)
            + identity.primary + _length(identity.secondary) + identity.secondary)
    return item(USER_IDENTITY_RQ, body)


def item(item_type: int, body: bytes) -> bytes:
    """An item or sub-item: type, reserved byte, 2-byte length, body (PS3.8 9.3.1)."""
    return struct.pack(">BBH", item_type, 0, _checked(len(body))) + body



def ae_title(title: str) -> bytes:
    """A Called or Calling AE Title field (PS3.8 Table 9-11): 16 bytes, space padded."""
    raw = _ascii(title)
    if not raw.strip(b" ") or len(raw) > 16:
        raise ValueError(f"an AE title has 1 to 16 characters, not {title!r}")
    return raw.ljust(16, b" ")


def _uid_field(uid: str) -> bytes:
    raw = _ascii(uid)
    return _length(raw) + raw


def _length(raw: bytes) -> bytes:
    return struct.pack(">H", _checked(len(raw)))


def _checked(length: int) -> int:
    if length > MAX_ITEM_LENGTH:
        raise ValueError(f"an item of {length} bytes does not fit its 2-byte length field")
    return length


def _ascii(text: str) -> bytes:
    return text.encode("ascii")
