"""Association negotiation for both roles (PS3.8 9.3.2–9.3.4, PS3.7 Annex D).

The A-ASSOCIATE PDUs and their items are encoded and decoded by pynetdicom's PDU
classes, and presentation contexts with their SCP/SCU roles negotiated by its
``negotiate_as_requestor`` and ``negotiate_as_acceptor``; this module turns them into
pacskit's own values: what we propose (:class:`Proposal`), what was accepted
(:class:`Negotiated`) and why an association was rejected (:class:`Rejection`).
"""

from __future__ import annotations

import copy
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.uid import UID
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import (
    PresentationContext,
    negotiate_as_acceptor,
    negotiate_as_requestor,
)

from pacskit.encoded import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacskit.net.ul import user_identity
from pacskit.net.ul.user_identity import UserIdentity

APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"
A_ASSOCIATE_RJ = 0x03

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
class AcceptedContext:
    """An accepted presentation context, seen from our side: the requests we may send on
    it (``as_scu``) and those we may be sent (``as_scp``), PS3.7 D.3.3.4."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: UID
    as_scu: bool
    as_scp: bool


@dataclass(frozen=True)
class RefusedContext:
    """A proposed presentation context the acceptor did not accept, with its result
    (PS3.8 Table 9-18: 1 user rejection, 2 no reason, 3 abstract syntax not supported,
    4 transfer syntaxes not supported)."""

    context_id: int
    abstract_syntax: str
    result: int


@dataclass
class Proposal:
    """What a requestor asks for in its A-ASSOCIATE-RQ.

    Attributes:
        contexts: the presentation contexts, in order (context IDs are assigned here).
        roles: SCP/SCU role selection proposed per SOP class: (SCU role, SCP role).
        extended: other user information items (SOP class extended negotiation), sent
            as they are.
        identity: the User Identity sub-item (PS3.7 D.3.3.7), if any.
    """

    calling_ae_title: str
    called_ae_title: str
    contexts: Sequence[PresentationContext]
    max_pdu: int
    roles: Mapping[str, tuple[bool, bool]] = field(default_factory=dict)
    extended: Sequence[Any] = ()
    identity: UserIdentity | None = None
    numbered: list[PresentationContext] = field(default_factory=list, init=False)

    def encode(self) -> bytes:
        """The A-ASSOCIATE-RQ PDU (PS3.8 9.3.2)."""
        self.numbered = []
        for index, context in enumerate(self.contexts):
            numbered = copy.copy(context)
            numbered.context_id = 2 * index + 1
            scu, scp = self.roles.get(str(context.abstract_syntax), (None, None))
            if scu is not None:
                numbered.scu_role = scu
                numbered.scp_role = scp
            self.numbered.append(numbered)
        primitive = A_ASSOCIATE()
        primitive.application_context_name = UID(APPLICATION_CONTEXT_NAME)
        primitive.calling_ae_title = self.calling_ae_title
        primitive.called_ae_title = self.called_ae_title
        primitive.presentation_context_definition_list = self.numbered
        roles = []
        for uid, (scu, scp) in self.roles.items():
            item = SCP_SCU_RoleSelectionNegotiation()
            item.sop_class_uid = UID(uid)
            item.scu_role = scu
            item.scp_role = scp
            roles.append(item)
        identity = [self.identity.item()] if self.identity is not None else []
        primitive.user_information = [*_our_identity(self.max_pdu), *roles, *identity, *self.extended]
        pdu = A_ASSOCIATE_RQ()
        pdu.from_primitive(primitive)
        return bytes(pdu.encode())


@dataclass(frozen=True)
class Negotiated:
    """The outcome of a successful negotiation, for either role."""

    contexts: dict[int, AcceptedContext]
    refused: list[RefusedContext]
    peer_max_pdu: int
    peer_implementation: tuple[str, str]
    user_information: list[Any]

    def context_for(self, abstract_syntax: str, transfer_syntax: str | None = None) -> AcceptedContext | None:
        """The first accepted context for ``abstract_syntax`` (and ``transfer_syntax``)."""
        return next((cx for cx in self.contexts.values() if cx.abstract_syntax == abstract_syntax
                     and transfer_syntax in (None, cx.transfer_syntax)), None)


@dataclass(frozen=True)
class Rejection:
    """An A-ASSOCIATE-RJ (PS3.8 9.3.4): result 1 permanent, 2 transient."""

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
        if len(pdu) < 10:
            return cls(1, 1, 1)
        return cls(pdu[7], pdu[8], pdu[9])


def read_acceptance(pdu: bytes | bytearray, proposal: Proposal) -> Negotiated:
    """What the acceptor's A-ASSOCIATE-AC (PS3.8 9.3.3) accepted of ``proposal``.

    Raises:
        ValueError: the PDU cannot be decoded.
    """
    ac = A_ASSOCIATE_AC()
    ac.decode(bytes(pdu))
    primitive = ac.to_primitive()
    items = _UserInformation.read(primitive.user_information)
    results = negotiate_as_requestor(proposal.numbered, primitive.presentation_context_definition_results_list,
                                     items.roles or None)  # type: ignore[arg-type]
    return _negotiated(results, items.peer_max, items.implementation, list(primitive.user_information))


@dataclass
class _UserInformation:
    """What pacskit reads of an A-ASSOCIATE user information item (PS3.7 D.3.3)."""

    roles: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    peer_max: int = 0
    implementation: tuple[str, str] = ("", "")
    window_proposed: bool = False

    @classmethod
    def read(cls, items: Sequence[Any]) -> _UserInformation:
        found = cls()
        uid, version = "", ""
        for item in items:
            if isinstance(item, SCP_SCU_RoleSelectionNegotiation):
                found.roles[str(item.sop_class_uid)] = (bool(item.scu_role), bool(item.scp_role))
            elif isinstance(item, MaximumLengthNotification):
                found.peer_max = int(item.maximum_length_received or 0)
            elif isinstance(item, ImplementationClassUIDNotification):
                uid = str(item.implementation_class_uid or "")
            elif isinstance(item, ImplementationVersionNameNotification):
                version = _text(item.implementation_version_name)
            elif isinstance(item, AsynchronousOperationsWindowNegotiation):
                found.window_proposed = True
        found.implementation = (uid, version)
        return found


@dataclass(frozen=True)
class Request:
    """A decoded A-ASSOCIATE-RQ, as an acceptor sees it."""

    protocol_version: int
    calling_ae_title: str
    called_ae_title: str
    application_context_name: str
    primitive: A_ASSOCIATE
    peer_max_pdu: int
    roles: dict[str, tuple[bool, bool]]
    implementation: tuple[str, str]
    window_proposed: bool
    identity: UserIdentity | None = None

    @classmethod
    def decode(cls, pdu: bytes | bytearray) -> Request:
        """Raises: ValueError (or any decoding error) for a malformed PDU."""
        rq = A_ASSOCIATE_RQ()
        rq.decode(bytes(pdu))
        primitive = rq.to_primitive()
        items = _UserInformation.read(primitive.user_information)
        return cls(int(rq.protocol_version), str(primitive.calling_ae_title).strip(),
                   str(primitive.called_ae_title).strip(), str(primitive.application_context_name),
                   primitive, items.peer_max, items.roles, items.implementation, items.window_proposed,
                   user_identity.requested(primitive.user_information))

    @property
    def proposed(self) -> list[PresentationContext]:
        return list(self.primitive.presentation_context_definition_list)

    def accept(self, supported: Sequence[PresentationContext], max_pdu: int, *,
               identity_accepted: bool = False) -> tuple[bytes, Negotiated]:
        """The A-ASSOCIATE-AC answering this request with what we support, and the
        outcome. The asynchronous operations window, when proposed, is answered with one
        operation each way (PS3.7 D.3.3.3): pacskit performs one at a time. With
        ``identity_accepted``, a User Identity that asked for a positive response gets
        one (PS3.7 D.3.3.7.2)."""
        role_requests = {UID(uid): roles for uid, roles in self.roles.items()}
        results, reply_roles = negotiate_as_acceptor(self.proposed, list(supported),
                                                     role_requests or None)  # type: ignore[arg-type]
        answer = A_ASSOCIATE()
        answer.application_context_name = UID(APPLICATION_CONTEXT_NAME)
        answer.calling_ae_title = self.primitive.calling_ae_title
        answer.called_ae_title = self.primitive.called_ae_title
        answer.result = 0x00
        answer.result_source = 0x01
        answer.presentation_context_definition_results_list = results
        items: list[Any] = [*_our_identity(max_pdu), *reply_roles]
        if self.window_proposed:
            window = AsynchronousOperationsWindowNegotiation()
            window.maximum_number_operations_invoked = 1
            window.maximum_number_operations_performed = 1
            items.append(window)
        if identity_accepted and self.identity is not None and self.identity.response_requested:
            items.append(user_identity.response())
        answer.user_information = items
        ac = A_ASSOCIATE_AC()
        ac.from_primitive(answer)
        return bytes(ac.encode()), _negotiated(results, self.peer_max_pdu, self.implementation,
                                               list(self.primitive.user_information))


def _negotiated(results: Sequence[PresentationContext], peer_max: int, implementation: tuple[str, str],
                user_information: list[Any]) -> Negotiated:
    accepted = {context_id(cx): AcceptedContext(context_id(cx), str(cx.abstract_syntax),
                                                    UID(cx.transfer_syntax[0]), bool(cx.as_scu), bool(cx.as_scp))
                for cx in results if cx.result == 0x00}
    refused = [RefusedContext(context_id(cx), str(cx.abstract_syntax), int(cx.result or 0))
               for cx in results if cx.result != 0x00]
    return Negotiated(accepted, refused, peer_max, implementation, user_information)


def context_id(cx: PresentationContext) -> int:
    """The ID of a proposed or negotiated context (pynetdicom types it Optional)."""
    if cx.context_id is None:
        raise TypeError("a presentation context without an ID")
    return int(cx.context_id)


def _our_identity(max_pdu: int) -> list[Any]:
    maximum = MaximumLengthNotification()
    maximum.maximum_length_received = max_pdu
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = UID(IMPLEMENTATION_CLASS_UID)
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    return [maximum, implementation, version]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    return str(value or "").strip()
