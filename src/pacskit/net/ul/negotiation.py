"""Association negotiation for both roles (PS3.8 9.3.2–9.3.4, PS3.7 Annex D), in pacskit's
own values: what we propose (:class:`Proposal`), what was accepted (:class:`Negotiated`)
and why an association was rejected (:class:`Rejection`).

The requestor's side is pacskit's own: the A-ASSOCIATE-RQ is encoded by
:mod:`pacskit.net.ul.associate_rq`, the answer decoded by :mod:`pacskit.net.ul.associate_ac`
and the presentation contexts with their SCP/SCU roles negotiated here
(:func:`read_acceptance`), so that an echo never imports pynetdicom. The acceptor's side
(:class:`Request`) decodes the request and encodes its answer with pynetdicom's codecs,
in :mod:`pacskit.net.ul.acceptance`, imported when a request is first decoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pacskit.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacskit.net.assembly import ProtocolViolation
from pacskit.net.ul.associate_ac import (
    ACCEPTANCE,
    REJECT_REASONS,
    AssociateAc,
    Rejection,
    decode_ac,
)
from pacskit.net.ul.associate_rq import (
    APPLICATION_CONTEXT_NAME,
    AssociateRq,
    ExtendedItem,
    ProposedContext,
)
from pacskit.net.ul.user_identity import UserIdentity
from pacskit.transfer_syntax import TransferSyntax

if TYPE_CHECKING:
    from pynetdicom.pdu_primitives import A_ASSOCIATE
    from pynetdicom.presentation import PresentationContext

__all__ = ["APPLICATION_CONTEXT_NAME", "REJECT_REASONS", "AcceptedContext", "ContextLike", "Negotiated",
           "Proposal", "RefusedContext", "Rejection", "Request", "context_id", "read_acceptance"]

NO_REASON = 0x02
"""PS3.8 Table 9-18: provider rejection, no reason given (what a context left unanswered counts as)."""


class ContextLike(Protocol):
    """A presentation context to propose: pacskit's :class:`~pacskit.net.ul.associate_rq.Context`,
    or pynetdicom's ``PresentationContext``."""

    @property
    def abstract_syntax(self) -> str | None: ...

    @property
    def transfer_syntax(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class AcceptedContext:
    """An accepted presentation context, seen from our side: the requests we may send on
    it (``as_scu``) and those we may be sent (``as_scp``), PS3.7 D.3.3.4."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: TransferSyntax
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
        extended: SOP class (common) extended negotiation sub-items, sent as they are.
        identity: the User Identity sub-item (PS3.7 D.3.3.7), if any.
        numbered: the contexts as :meth:`encode` proposed them, with their IDs and roles.
    """

    calling_ae_title: str
    called_ae_title: str
    contexts: Sequence[ContextLike]
    max_pdu: int
    roles: Mapping[str, tuple[bool, bool]] = field(default_factory=dict)
    extended: Sequence[ExtendedItem] = ()
    identity: UserIdentity | None = None
    numbered: list[ProposedContext] = field(default_factory=list, init=False)

    def encode(self) -> bytes:
        """The A-ASSOCIATE-RQ PDU (PS3.8 9.3.2)."""
        self.numbered = []
        for index, context in enumerate(self.contexts):
            abstract_syntax = str(context.abstract_syntax)
            scu, scp = self.roles.get(abstract_syntax, (None, None))
            self.numbered.append(ProposedContext(2 * index + 1, abstract_syntax,
                                                 tuple(str(syntax) for syntax in context.transfer_syntax), scu, scp))
        return AssociateRq(self.calling_ae_title, self.called_ae_title, self.numbered, self.max_pdu,
                           IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME,
                           roles={str(uid): roles for uid, roles in self.roles.items()},
                           identity=self.identity, extended=self.extended).encode()


@dataclass(frozen=True)
class Negotiated:
    """The outcome of a successful negotiation, for either role.

    Attributes:
        identity_response: the acceptor's User Identity server response (PS3.7
            D.3.3.7.2), None when it sent none (the requestor's side only).
    """

    contexts: dict[int, AcceptedContext]
    refused: list[RefusedContext]
    peer_max_pdu: int
    peer_implementation: tuple[str, str]
    identity_response: bytes | None = None

    def context_for(self, abstract_syntax: str, transfer_syntax: str | None = None) -> AcceptedContext | None:
        """The first accepted context for ``abstract_syntax`` (and ``transfer_syntax``)."""
        return next((cx for cx in self.contexts.values() if cx.abstract_syntax == abstract_syntax
                     and transfer_syntax in (None, cx.transfer_syntax)), None)


def read_acceptance(pdu: bytes | bytearray, proposal: Proposal) -> Negotiated:
    """What the acceptor's A-ASSOCIATE-AC (PS3.8 9.3.3) accepted of ``proposal``.

    Raises:
        ProtocolViolation: the PDU is malformed, or answers a context not proposed.
    """
    return negotiate_as_requestor(decode_ac(pdu), proposal.numbered)


def negotiate_as_requestor(answer: AssociateAc, proposed: Sequence[ProposedContext]) -> Negotiated:
    """The contexts ``answer`` accepted of ``proposed``, with our roles on each; a context
    it left unanswered counts as refused with no reason (result 2), as pynetdicom's
    ``negotiate_as_requestor`` counts it.

    Roles (PS3.7 D.3.3.4): without a role selection proposed and answered for the
    abstract syntax, the requestor is SCU only; with both, each role is ours if we
    proposed it and the acceptor granted it (an accepted context may so end up with
    neither).

    Raises:
        ProtocolViolation: ``answer`` has a context ID we did not propose.
    """
    answered = {cx.context_id: cx for cx in answer.contexts}
    offered = {cx.context_id: cx for cx in proposed}
    stray = sorted(set(answered) - set(offered))
    if stray:
        raise ProtocolViolation(f"the A-ASSOCIATE-AC answers presentation context {stray[0]}, which was not proposed")
    accepted: dict[int, AcceptedContext] = {}
    refused: list[RefusedContext] = []
    for cx in proposed:
        result = answered.get(cx.context_id)
        if result is None or result.result != ACCEPTANCE or result.transfer_syntax is None:
            refused.append(RefusedContext(cx.context_id, cx.abstract_syntax, NO_REASON if result is None
                                          else result.result))
            continue
        granted = answer.roles.get(cx.abstract_syntax)
        if cx.scu_role is None or cx.scp_role is None or granted is None:
            as_scu, as_scp = True, False
        else:
            as_scu, as_scp = cx.scu_role and granted[0], cx.scp_role and granted[1]
        accepted[cx.context_id] = AcceptedContext(cx.context_id, cx.abstract_syntax, TransferSyntax(result.transfer_syntax),
                                                  as_scu, as_scp)
    return Negotiated(accepted, refused, answer.max_length,
                      (answer.implementation_class_uid, answer.implementation_version_name), answer.identity_response)


@dataclass(frozen=True)
class Request:
    """A decoded A-ASSOCIATE-RQ, as an acceptor sees it (pynetdicom's primitive inside)."""

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
        from pacskit.net.ul import acceptance

        return acceptance.decode_request(pdu)

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
        from pacskit.net.ul import acceptance

        return acceptance.accept(self, supported, max_pdu, identity_accepted=identity_accepted)


def context_id(cx: PresentationContext) -> int:
    """The ID of a proposed or negotiated context (pynetdicom types it Optional)."""
    if cx.context_id is None:
        raise TypeError("a presentation context without an ID")
    return int(cx.context_id)
