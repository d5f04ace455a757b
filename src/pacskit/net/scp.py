"""pacskit's own Storage SCP, started for as long as a C-MOVE to ourselves needs it.

It runs on the archive's :class:`~pacskit.net.acceptor.Acceptor` (one thread per
association, messages read straight from the socket), with a service that hands each
instance, still encoded and behind its file meta information, to the retrieve.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pydicom import Dataset
from pynetdicom import build_context
from pynetdicom.sop_class import Verification

from pacskit.encoded import file_meta
from pacskit.net.acceptor import (
    SOP_CLASS_NOT_SUPPORTED,
    SUCCESS,
    Acceptor,
    DimseStatus,
    Peer,
    Retrievable,
    StoreRequest,
    StoreSink,
)
from pacskit.net.contexts import scp_storage_contexts
from pacskit.net.retrieve import InstanceHandler, ReceivedInstance
from pacskit.nodes import Node
from pacskit.settings import Settings


@contextmanager
def storage_scp(settings: Settings, on_instance: InstanceHandler,
                port: int | None = None) -> Iterator[Acceptor]:
    """Listen as a Storage SCP (AE title and port from settings) until the block ends.

    Only associations that call our AE title are accepted.

    Raises:
        NetworkError: the port cannot be listened on (in use, no permission).
    """
    acceptor = Acceptor(settings, _MoveDestination(on_instance),
                        [*scp_storage_contexts(), build_context(Verification)])
    acceptor.start((settings.bind_address, port if port is not None else settings.port))
    try:
        yield acceptor
    finally:
        acceptor.shutdown()


class _MoveDestination:
    """The services of a C-MOVE destination: Verification and Storage only."""

    def __init__(self, on_instance: InstanceHandler) -> None:
        self.on_instance = on_instance

    def admit(self, peer: Peer) -> str | None:
        return None

    def echo(self, peer: Peer) -> None:
        pass

    def store(self, peer: Peer, request: StoreRequest) -> StoreSink:
        return _Instance(self.on_instance, file_meta(request.sop_class_uid, request.sop_instance_uid,
                                                     request.transfer_syntax, peer.ae_title or None))

    def find(self, peer: Peer, sop_class_uid: str, identifier: Dataset) -> Iterator[Dataset]:
        raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "a C-MOVE destination does not answer C-FIND")

    def retrieve(self, peer: Peer, operation: str, sop_class_uid: str,
                 identifier: Dataset) -> Sequence[Retrievable]:
        raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "a C-MOVE destination does not retrieve")

    def destination(self, peer: Peer, ae_title: str) -> Node:
        raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "a C-MOVE destination does not move")


class _Instance(ReceivedInstance):
    """One C-STORE's dataset, handed to the retrieve once whole."""

    def __init__(self, on_instance: InstanceHandler, meta: bytes) -> None:
        super().__init__(meta)
        self.on_instance = on_instance

    def finish(self) -> None:
        try:
            status = self.status(self.on_instance)
        finally:
            self.discard()
        if status != SUCCESS:
            raise DimseStatus(status)
