"""A scripted DICOM SCP on a loopback port, for protocol behaviour no real peer shows on
demand: it accepts each association (every proposed context with the first transfer
syntax it names that the script allows, and any SCP role asked for), then hands the
conversation to a script, which reads and writes DIMSE messages in the order it wants."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from pynetdicom import build_context

from pacskit.net.association import Association, ReleaseRequested
from pacskit.net.transport import Transport
from pacskit.net.wire import Message
from pacskit.settings import Settings

MAX_PDU = 131072


@dataclass
class Conversation:
    """One accepted association: its association (``channel``), the accepted contexts by
    ID (abstract syntax, transfer syntax) and who called."""

    channel: Association
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
                self.channel.release_response()
                self.released = True
                return

    def release(self) -> None:
        """Wait for the requestor's A-RELEASE-RQ and answer it (messages before it are
        dropped)."""
        try:
            while True:
                self.channel.receive()
        except ReleaseRequested:
            self.channel.release_response()
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
        settings = Settings(max_pdu=MAX_PDU, acse_timeout=30, network_timeout=30)
        channel, request = Association.incoming(Transport(conn, "pacskit", 30), "pacskit", settings)
        assert request is not None, "no A-ASSOCIATE-RQ"
        syntaxes: dict[str, dict[str, None]] = {}
        for proposed in request.proposed:
            allowed = syntaxes.setdefault(str(proposed.abstract_syntax), {})
            allowed.update(dict.fromkeys(str(ts) for ts in proposed.transfer_syntax
                                         if self.accept_syntaxes is None or ts in self.accept_syntaxes))
        supported = []
        for abstract_syntax, allowed in syntaxes.items():
            if allowed:
                context = build_context(abstract_syntax, list(allowed))
                context.scu_role = True
                context.scp_role = True
                supported.append(context)
        channel.accept(request, supported, settings)
        contexts = {cx_id: (cx.abstract_syntax, str(cx.transfer_syntax)) for cx_id, cx in channel.contexts.items()}
        conversation = Conversation(channel, contexts, request.calling_ae_title)
        self.conversations.append(conversation)
        self.script(conversation)
        if not conversation.released:
            conversation.release()
