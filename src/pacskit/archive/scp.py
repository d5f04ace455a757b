"""The archive's DIMSE services: Verification, Storage and Query/Retrieve SCP (PS3.4
Annexes A, B and C), behind a per-peer access table.

Access control follows Orthanc's model: the nodes table lists the peers that may call
us, each with the operations it may ask for (``allow``); peers not in the table may
echo and store when ``accept_unknown_peers`` is on, and nothing else. A refused
operation answers 0x0124 (Refused: Not Authorized) and is logged with the reason.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

from pydicom import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from pacskit.archive.index import StoredInstance
from pacskit.archive.ingest import Ingest, Received
from pacskit.errors import QueryError
from pacskit.net.ae import NODELAY_HANDLER, StoredFile, make_ae
from pacskit.net.contexts import EVERY_SYNTAX, MAX_CONTEXTS, storage_sop_classes
from pacskit.net.store import contexts_for
from pacskit.query import Query
from pacskit.settings import Operation, Settings

LOG = logging.getLogger("pacskit.archive")

NOT_AUTHORIZED = 0x0124
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
UNABLE_TO_PROCESS = 0xC000
PENDING = 0xFF00
CANCEL = 0xFE00
SUCCESS = 0x0000

FIND_MODELS = {
    PatientRootQueryRetrieveInformationModelFind: "patient",
    StudyRootQueryRetrieveInformationModelFind: "study",
}
GET_MODELS = {
    PatientRootQueryRetrieveInformationModelGet: "patient",
    StudyRootQueryRetrieveInformationModelGet: "study",
}
MOVE_MODELS = {
    PatientRootQueryRetrieveInformationModelMove: "patient",
    StudyRootQueryRetrieveInformationModelMove: "study",
}


class AccessTable:
    """Who may do what (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.archive = settings.archive
        self.peers = {node.ae_title: node for node in settings.nodes.values()}

    def allows(self, operation: Operation, calling_ae_title: str, address: str) -> str | None:
        """None if the peer may do ``operation``, else the reason it may not."""
        node = self.peers.get(calling_ae_title)
        if node is None:
            if self.archive.accept_unknown_peers and operation in ("echo", "store"):
                return None
            return f"{calling_ae_title!r} is not a known peer"
        if operation not in node.allow:
            return f"{calling_ae_title!r} may not {operation}"
        if self.archive.check_peer_host and not _same_host(node.host, address):
            return f"{calling_ae_title!r} calls from {address}, not from {node.host}"
        return None

    def destination(self, ae_title: str) -> tuple[str, int] | None:
        """Where a C-MOVE to ``ae_title`` goes, if the nodes table knows it."""
        node = self.peers.get(ae_title)
        return (node.host, node.port) if node is not None else None


class ArchiveSCP:
    """The handlers of every service, over one :class:`Ingest` and one index."""

    def __init__(self, settings: Settings, ingest: Ingest, index: Any) -> None:
        self.settings = settings
        self.ingest = ingest
        self.index = index
        self.access = AccessTable(settings)

    def application_entity(self) -> AE:
        """A pynetdicom AE offering every service, with these handlers' checks."""
        ae = make_ae(self.settings)
        ae.require_called_aet = self.settings.archive.check_called_aet
        if not self.settings.archive.accept_unknown_peers:
            ae.require_calling_aet = sorted(self.access.peers)
        ae.add_supported_context(Verification)
        for uid in storage_sop_classes():
            ae.add_supported_context(uid, EVERY_SYNTAX, scu_role=True, scp_role=True)
        for uid in (*FIND_MODELS, *GET_MODELS, *MOVE_MODELS):
            ae.add_supported_context(uid)
        return ae

    def handlers(self) -> list[tuple[evt.EventType, Callable[..., Any]]]:
        return [
            NODELAY_HANDLER,
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_C_FIND, self.on_find),
            (evt.EVT_C_GET, self.on_get),
            (evt.EVT_C_MOVE, self.on_move),
            (evt.EVT_REJECTED, _log_rejection),
        ]

    def on_echo(self, event: evt.Event) -> int:
        return NOT_AUTHORIZED if self._refused("echo", event) else SUCCESS

    def on_store(self, event: evt.Event) -> int | Dataset:
        if self._refused("store", event):
            return NOT_AUTHORIZED
        request = event.request
        outcome = self.ingest.ingest(Received(
            str(request.AffectedSOPClassUID), str(request.AffectedSOPInstanceUID),
            str(event.context.transfer_syntax), event.encoded_dataset(include_meta=False),
            _calling(event),
        ))
        if outcome.status == SUCCESS:
            return SUCCESS
        response = Dataset()
        response.Status = outcome.status
        response.ErrorComment = outcome.reason[:64]
        return response

    def on_find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        if self._refused("find", event):
            yield NOT_AUTHORIZED, None
            return
        query = self._query(event, FIND_MODELS)
        if query is None:
            yield IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, None
            return
        for match in self.index.find(query, limit=self.settings.archive.find_limit):
            if event.is_cancelled:
                yield CANCEL, None
                return
            yield PENDING, match

    def on_get(self, event: evt.Event) -> Iterator[Any]:
        query = self._query(event, GET_MODELS)
        if self._refused("get", event) or query is None:
            yield 1  # pynetdicom answers a failure only after a count of sub-operations
            yield (NOT_AUTHORIZED if query is not None else IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS), None
            return
        yield from self._sub_operations(event, list(self.index.instances(query)))

    def on_move(self, event: evt.Event) -> Iterator[Any]:
        """pynetdicom reads the destination first and has no way to refuse before it:
        a refused or unreadable C-MOVE raises, which it answers with 0xC514."""
        if self._refused("move", event):
            raise PermissionError("move refused")
        query = self._query(event, MOVE_MODELS)
        if query is None:
            raise ValueError("unreadable C-MOVE identifier")
        name = str(event.move_destination).strip()
        destination = self.access.destination(name)
        if destination is None:
            LOG.warning("C-MOVE from %s to unknown destination %r", _calling(event), name)
            yield None, None
            return
        stored = list(self.index.instances(query))
        yield (*destination, {"contexts": contexts_for(stored)[:MAX_CONTEXTS]})
        yield from self._sub_operations(event, stored)

    def _sub_operations(self, event: evt.Event, stored: list[StoredInstance]) -> Iterator[Any]:
        yield len(stored)
        root = self.ingest.files
        for instance in stored:
            if event.is_cancelled:
                yield CANCEL, None
                return
            yield PENDING, StoredFile(root / instance.path, instance.sop_instance_uid)

    def _query(self, event: evt.Event, models: dict[str, str]) -> Query | None:
        try:
            return Query.from_identifier(event.identifier, models[event.context.abstract_syntax])
        except (QueryError, KeyError, ValueError) as exc:
            LOG.warning("bad query from %s: %s", _calling(event), exc)
            return None

    def _refused(self, operation: Operation, event: evt.Event) -> bool:
        address = str(event.assoc.requestor.address)
        reason = self.access.allows(operation, _calling(event), address)
        if reason is not None:
            LOG.warning("refused %s from %s at %s: %s", operation, _calling(event), address, reason)
        return reason is not None


def _calling(event: evt.Event) -> str:
    return str(event.assoc.requestor.ae_title).strip()


def _log_rejection(event: evt.Event) -> None:
    LOG.warning("rejected an association from %s at %s", _calling(event),
                event.assoc.requestor.address)


def _same_host(configured: str, address: str) -> bool:
    if configured == address:
        return True
    try:
        return address in {info[4][0] for info in socket.getaddrinfo(configured, None)}
    except OSError:
        return False
