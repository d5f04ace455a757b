"""The acceptor's side of association negotiation with pynetdicom's codecs: an
A-ASSOCIATE-RQ decoded into a :class:`~pacskit.net.ul.negotiation.Request`, and the
A-ASSOCIATE-AC answering it (PS3.8 9.3.2, 9.3.3; PS3.7 Annex D), with the presentation
contexts and SCP/SCU roles negotiated by pynetdicom's ``negotiate_as_acceptor``.

Imported when the first request is decoded (a requestor never imports it, nor so
pynetdicom, whose package import costs 30–40 ms: docs/start-up.md).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext, negotiate_as_acceptor

from pacskit.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacskit.net.ul.negotiation import (
    APPLICATION_CONTEXT_NAME,
    AcceptedContext,
    Negotiated,
    RefusedContext,
    Request,
    context_id,
)
from pacskit.net.ul.user_identity import UserIdentity
from pacskit.transfer_syntax import TransferSyntax


def decode_request(pdu: bytes | bytearray) -> Request:
    """Raises: ValueError (or any decoding error) for a malformed PDU."""
    rq = A_ASSOCIATE_RQ()
    rq.decode(bytes(pdu))
    primitive = rq.to_primitive()
    items = _UserInformation.read(primitive.user_information)
    return Request(int(rq.protocol_version), str(primitive.calling_ae_title).strip(),
                   str(primitive.called_ae_title).strip(), str(primitive.application_context_name),
                   primitive, items.peer_max, items.roles, items.implementation, items.window_proposed,
                   requested(primitive.user_information))


def accept(request: Request, supported: Sequence[PresentationContext], max_pdu: int, *,
           identity_accepted: bool = False) -> tuple[bytes, Negotiated]:
    """As :meth:`pacskit.net.ul.negotiation.Request.accept`."""
    role_requests = {UID(uid): roles for uid, roles in request.roles.items()}
    results, reply_roles = negotiate_as_acceptor(request.proposed, list(supported),
                                                 role_requests or None)  # type: ignore[arg-type]
    answer = A_ASSOCIATE()
    answer.application_context_name = UID(APPLICATION_CONTEXT_NAME)
    answer.calling_ae_title = request.primitive.calling_ae_title
    answer.called_ae_title = request.primitive.called_ae_title
    answer.result = 0x00
    answer.result_source = 0x01
    answer.presentation_context_definition_results_list = results
    items: list[Any] = [*_our_identity(max_pdu), *reply_roles]
    if request.window_proposed:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked = 1
        window.maximum_number_operations_performed = 1
        items.append(window)
    if identity_accepted and request.identity is not None and request.identity.response_requested:
        items.append(response())
    answer.user_information = items
    ac = A_ASSOCIATE_AC()
    ac.from_primitive(answer)
    accepted = {context_id(cx): AcceptedContext(context_id(cx), str(cx.abstract_syntax), TransferSyntax(cx.transfer_syntax[0]),
                                                bool(cx.as_scu), bool(cx.as_scp))
                for cx in results if cx.result == 0x00}
    refused = [RefusedContext(context_id(cx), str(cx.abstract_syntax), int(cx.result or 0))
               for cx in results if cx.result != 0x00]
    return bytes(ac.encode()), Negotiated(accepted, refused, request.peer_max_pdu, request.implementation)


@dataclass
class _UserInformation:
    """What pacskit reads of an A-ASSOCIATE-RQ's user information item (PS3.7 D.3.3)."""

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


def requested(items: Sequence[Any]) -> UserIdentity | None:
    """The User Identity an A-ASSOCIATE-RQ's user information ``items`` carry, if any."""
    for item in items:
        if isinstance(item, UserIdentityNegotiation) and item.server_response is None \
                and item.user_identity_type is not None:
            return UserIdentity(int(item.user_identity_type), bytes(item.primary_field or b""),
                                bytes(item.secondary_field or b""), bool(item.positive_response_requested))
    return None


def response(server_response: bytes = b"") -> UserIdentityNegotiation:
    """The A-ASSOCIATE-AC's User Identity sub-item (0x59), PS3.7 D.3.3.7.2: empty for
    a type 1 or 2 identity."""
    primitive = UserIdentityNegotiation()
    primitive.server_response = server_response
    return primitive


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
