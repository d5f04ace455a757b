"""A scripted DICOM SCP on a loopback port, for protocol behaviour no real peer shows on
demand: it accepts each association (every proposed context with the first transfer
syntax it names that the script allows, and any SCP role asked for), then hands the
conversation to a script, which reads and writes DIMSE messages in the order it wants."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import PresentationContext

from pacskit.net.wire import Channel, Message, ReleaseRequested

A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
MAX_PDU = 131072


@dataclass
class Conversation:
    """One accepted association: its channel, the accepted contexts by ID (abstract
    syntax, transfer syntax) and who called."""

    channel: Channel
    contexts: dict[int, tuple[str, str]]
    calling_ae_title: str
    seen: list[Message] = field(default_factory=list)
    released: bool = False

    def receive(self) -> Message:
        message = self.channel.receive()
        self.seen.append(message)
        return message

    def messages(self) -> Iterator[Message]:
        """Every message until the requestor releases the association (answered)."""
        while True:
            try:
                yield self.receive()
            except ReleaseRequested:
                self.channel.write(struct.pack(">BBI", A_RELEASE_RP, 0, 4) + b"\0\0\0\0")
                self.released = True
                return

    def release(self) -> None:
        """Wait for the requestor's A-RELEASE-RQ and answer it."""
        pdu_type, _ = self.channel.read_pdu()
        if pdu_type == A_RELEASE_RQ:
            self.channel.write(struct.pack(">BBI", A_RELEASE_RP, 0, 4) + b"\0\0\0\0")
        self.released = True

    def context_for(self, abstract_syntax: str, transfer_syntax: str | None = None) -> int | None:
        return next((cx for cx, (a, t) in self.contexts.items()
                     if a == abstract_syntax and transfer_syntax in (None, t)), None)


Script = Callable[[Conversation], None]


class ScriptedPeer:
    """Accepts associations as ``ae_title`` and runs ``script`` on each, in turn.

    Args:
        accept_syntaxes: given, a proposed context is accepted only with one of these
            transfer syntaxes (the first the requestor lists), else rejected.
    """

    def __init__(self, ae_title: str, script: Script,
                 accept_syntaxes: Collection[str] | None = None) -> None:
        self.ae_title = ae_title
        self.script = script
        self.accept_syntaxes = accept_syntaxes
        self.server = socket.create_server(("127.0.0.1", 0))
        self.host = "127.0.0.1"
        self.port = self.server.getsockname()[1]
        self.conversations: list[Conversation] = []
        self.errors: list[BaseException] = []
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"dicom://{self.ae_title}@{self.host}:{self.port}"

    def close(self) -> None:
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        self._thread.join(5)

    def __enter__(self) -> ScriptedPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                try:
                    self._converse(conn)
                except BaseException as exc:  # noqa: BLE001 - kept for the test to show
                    self.errors.append(exc)
                finally:
                    self.done.set()

    def _converse(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        channel = Channel(conn, "pacskit", 30, 0)
        pdu_type, body = channel.read_pdu()
        request = A_ASSOCIATE_RQ()
        request.decode(struct.pack(">BBI", pdu_type, 0, len(body)) + body)
        primitive = request.to_primitive()
        roles = {str(item.sop_class_uid): item for item in primitive.user_information
                 if isinstance(item, SCP_SCU_RoleSelectionNegotiation)}
        peer_max = next((int(item.maximum_length_received or 0) for item in primitive.user_information
                         if isinstance(item, MaximumLengthNotification)), 0)
        channel.peer_max = peer_max
        results, contexts = [], {}
        for proposed in primitive.presentation_context_definition_list:
            result = PresentationContext()
            result.context_id = proposed.context_id
            result.abstract_syntax = proposed.abstract_syntax
            syntax = next((ts for ts in proposed.transfer_syntax
                           if self.accept_syntaxes is None or ts in self.accept_syntaxes), None)
            result.result = 0x00 if syntax is not None else 0x04
            result.transfer_syntax = [syntax or proposed.transfer_syntax[0]]
            results.append(result)
            if syntax is not None:
                contexts[int(proposed.context_id)] = (str(proposed.abstract_syntax), str(syntax))
        reply_roles = []
        for uid, asked in roles.items():
            role = SCP_SCU_RoleSelectionNegotiation()
            role.sop_class_uid = uid
            role.scu_role = bool(asked.scu_role)
            role.scp_role = bool(asked.scp_role)
            reply_roles.append(role)
        maximum = MaximumLengthNotification()
        maximum.maximum_length_received = MAX_PDU
        answer = A_ASSOCIATE()
        answer.application_context_name = primitive.application_context_name
        answer.calling_ae_title = primitive.calling_ae_title
        answer.called_ae_title = primitive.called_ae_title
        answer.result = 0x00
        answer.result_source = 0x01
        answer.presentation_context_definition_results_list = results
        answer.user_information = [maximum, *reply_roles]
        pdu = A_ASSOCIATE_AC()
        pdu.from_primitive(answer)
        channel.write(pdu.encode())
        conversation = Conversation(channel, contexts, str(primitive.calling_ae_title).strip())
        self.conversations.append(conversation)
        self.script(conversation)
        if not conversation.released:
            conversation.release()
