"""A scripted SCP at the PDU level, the lower sibling of :mod:`scripted_peer`: it
answers each A-ASSOCIATE-RQ with an AC (every proposed context accepted with its first
transfer syntax — Implicit VR Little Endian when offered — unless its abstract syntax
is refused, every SCP/SCU role asked for
granted unless refused), then hands the
raw connection to a script, which writes any bytes and reads PDUs with deadlines."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from pdu_link import Pdu, PduLink
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import PresentationContext
from raw_pdu import (
    A_ASSOCIATE_RQ_PDU,
    A_RELEASE_RQ_PDU,
    IMPLICIT_LE,
    TEST_IMPLEMENTATION_UID,
    pdu,
    release_rp,
)

ACCEPTOR_MAX_PDU = 65536


@dataclass
class RawConversation:
    """One accepted association: the link, the accepted contexts (ID → abstract syntax,
    transfer syntax) and the rejected ones, the roles asked for and those granted (SOP
    class → (SCU, SCP)), and the PDUs the script chose to record."""

    link: PduLink
    contexts: dict[int, tuple[str, str]]
    rejected: dict[int, str]
    asked_roles: dict[str, tuple[bool, bool]]
    roles: dict[str, tuple[bool, bool]]
    peer_max_pdu: int
    received: list[Pdu] = field(default_factory=list)

    def context_for(self, abstract_syntax: str) -> int:
        """An accepted context for ``abstract_syntax``, Implicit VR Little Endian if any."""
        matching = sorted((ts != IMPLICIT_LE, cx) for cx, (syntax, ts) in self.contexts.items()
                          if syntax == abstract_syntax)
        return matching[0][1]

    def syntax_of(self, context_id: int) -> str:
        """The transfer syntax accepted for ``context_id`` (Implicit VR LE if none was)."""
        return self.contexts.get(context_id, ("", IMPLICIT_LE))[1]

    def answer_release(self, timeout: float = 5.0) -> Pdu | None:
        """Wait for the requestor's next PDU; answer an A-RELEASE-RQ with an RP. The PDU."""
        received = self.link.read_pdu(timeout)
        if received is not None:
            self.received.append(received)
            if received[0] == A_RELEASE_RQ_PDU:
                self.link.send(release_rp())
        return received


RawScript = Callable[[RawConversation], None]


class RawAcceptor:
    """Listens on a free loopback port as ``ae_title``; runs ``script`` on each association.

    Args:
        refuse_scp_role: SOP classes whose role selection item is left out of the AC, so
            that the default roles apply (the requestor SCU only; PS3.7 D.3.3.4).
        reject: abstract syntaxes whose contexts are rejected (result 3, abstract syntax
            not supported; PS3.8 9.3.3.2).
        damage: what is sent instead of the A-ASSOCIATE-AC, made from it (a malformed AC).

    Attributes:
        conversations: each association's :class:`RawConversation`, in order.
        errors: what each script raised (a failed assertion included).
        finished: set once a script has returned (or raised) and its socket is closed.
    """

    def __init__(self, ae_title: str, script: RawScript, *,
                 refuse_scp_role: Collection[str] = (), reject: Collection[str] = (),
                 damage: Callable[[bytes], bytes] | None = None) -> None:
        self.ae_title = ae_title
        self.damage = damage
        self.script = script
        self.refuse_scp_role = set(refuse_scp_role)
        self.reject = set(reject)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.host = "127.0.0.1"
        self.port = self.server.getsockname()[1]
        self.conversations: list[RawConversation] = []
        self.errors: list[BaseException] = []
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"dicom://{self.ae_title}@{self.host}:{self.port}"

    def __enter__(self) -> RawAcceptor:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            link = PduLink(conn)
            try:
                self._converse(link)
            except BaseException as exc:  # noqa: BLE001 - kept for the test to show
                self.errors.append(exc)
            finally:
                link.close()
                self.finished.set()

    def _converse(self, link: PduLink) -> None:
        received = link.read_pdu(10)
        assert received is not None and received[0] == A_ASSOCIATE_RQ_PDU, received
        request = A_ASSOCIATE_RQ()
        request.decode(pdu(*received))
        primitive = request.to_primitive()
        peer_max = next((int(item.maximum_length_received or 0) for item in primitive.user_information
                         if isinstance(item, MaximumLengthNotification)), 0)
        results, contexts, rejected = [], {}, {}
        for proposed in primitive.presentation_context_definition_list:
            result = PresentationContext()
            result.context_id = proposed.context_id
            result.abstract_syntax = proposed.abstract_syntax
            syntax = IMPLICIT_LE if IMPLICIT_LE in proposed.transfer_syntax else str(proposed.transfer_syntax[0])
            result.transfer_syntax = [syntax]
            if str(proposed.abstract_syntax) in self.reject:
                result.result = 0x03
                rejected[int(proposed.context_id)] = str(proposed.abstract_syntax)
            else:
                result.result = 0x00
                contexts[int(proposed.context_id)] = (str(proposed.abstract_syntax), syntax)
            results.append(result)
        replies, asked_roles, roles = [], {}, {}
        for asked in primitive.user_information:
            if not isinstance(asked, SCP_SCU_RoleSelectionNegotiation):
                continue
            asked_roles[str(asked.sop_class_uid)] = (bool(asked.scu_role), bool(asked.scp_role))
            if str(asked.sop_class_uid) in self.refuse_scp_role:
                continue
            role = SCP_SCU_RoleSelectionNegotiation()
            role.sop_class_uid = asked.sop_class_uid
            role.scu_role = bool(asked.scu_role)
            role.scp_role = bool(asked.scp_role)
            replies.append(role)
            roles[str(asked.sop_class_uid)] = (role.scu_role, role.scp_role)
        maximum = MaximumLengthNotification()
        maximum.maximum_length_received = ACCEPTOR_MAX_PDU
        implementation = ImplementationClassUIDNotification()
        implementation.implementation_class_uid = TEST_IMPLEMENTATION_UID
        answer = A_ASSOCIATE()
        answer.application_context_name = primitive.application_context_name
        answer.calling_ae_title = primitive.calling_ae_title
        answer.called_ae_title = primitive.called_ae_title
        answer.result = 0x00
        answer.result_source = 0x01
        answer.presentation_context_definition_results_list = results
        answer.user_information = [maximum, implementation, *replies]
        ac = A_ASSOCIATE_AC()
        ac.from_primitive(answer)
        encoded = bytes(ac.encode())
        link.send(self.damage(encoded) if self.damage is not None else encoded)
        conversation = RawConversation(link, contexts, rejected, asked_roles, roles, peer_max)
        self.conversations.append(conversation)
        self.script(conversation)
