"""The archive's DIMSE services: Verification, Storage, Query/Retrieve and Modality
Worklist SCP (PS3.4 Annexes A, B, C and K), behind a per-peer access table.

Access control follows Orthanc's model: the nodes table lists the peers that may call
us, each with the operations it may ask for (``allow``); peers not in the table may
echo and store when ``accept_unknown_peers`` is on, and nothing else (otherwise their
associations are rejected). With ``check_peer_host``, a known AE title calling from
another address than its node's is rejected at association (A-ASSOCIATE-RJ, permanent,
calling AE title not recognised, PS3.8 9.3.4), as Orthanc and dcm4chee do. A refused
operation answers 0x0124 (Refused: Not Authorized) and is logged with the reason; for
C-FIND, C-GET and C-MOVE the refusal comes before their identifier is decoded. A user
the association's User Identity proved (:mod:`pacskit.archive.identities`) may do only
what both its ``allow`` in ``web.users`` and the peer's permit.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import build_context
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made by globals()
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from pacskit.archive.index import Index, StoredInstance
from pacskit.archive.ingest import Incoming, Ingest
from pacskit.archive.worklist import Answer, Worklist
from pacskit.errors import QueryError
from pacskit.net.acceptor import Peer, Retrievable, StoreRequest
from pacskit.net.contexts import EVERY_SYNTAX, storage_sop_classes
from pacskit.net.identifier import PreEncoded
from pacskit.net.normalized import NormalizedRequest, NormalizedResponse
from pacskit.net.status import DimseStatus
from pacskit.net.wire import Fragment
from pacskit.nodes import Node
from pacskit.query import Query
from pacskit.settings import OPERATIONS, Operation, Settings
from pacskit.worklist.matching import IdentifierError, check_identifier
from pacskit.worklist.model import MODALITY_WORKLIST_FIND

LOG = logging.getLogger("pacskit.archive")

NOT_AUTHORIZED = 0x0124
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
MOVE_DESTINATION_UNKNOWN = 0xA801
SUCCESS = 0x0000
UNRECOGNIZED_OPERATION = 0x0211

QUERY_SYNTAXES: list[str | UID] = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                  ExplicitVRBigEndian]
MODELS = {
    PatientRootQueryRetrieveInformationModelFind: "patient",
    StudyRootQueryRetrieveInformationModelFind: "study",
    PatientRootQueryRetrieveInformationModelGet: "patient",
    StudyRootQueryRetrieveInformationModelGet: "study",
    PatientRootQueryRetrieveInformationModelMove: "patient",
    StudyRootQueryRetrieveInformationModelMove: "study",
}


class AccessTable:
    """Who may do what (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.archive = settings.archive
        self.users = settings.web
        self.peers = {node.ae_title: node for node in settings.nodes.values() if node.ae_title and node.host}

    def admits(self, calling_ae_title: str, address: str) -> str | None:
        """None if an association from ``calling_ae_title`` at ``address`` is accepted,
        else why not."""
        node = self.peers.get(calling_ae_title)
        if node is None:
            return None if self.archive.accept_unknown_peers else f"{calling_ae_title!r} is not a known peer"
        if self.archive.check_peer_host and not _same_host(node.host, address):
            return f"{calling_ae_title!r} calls from {address}, not from {node.host}"
        return None

    def allows(self, operation: Operation, calling_ae_title: str, address: str, user: str = "") -> str | None:
        """None if the peer (and the ``user`` its User Identity proved) may do
        ``operation``, else the reason it may not."""
        reason = self._peer_allows(operation, calling_ae_title, address)
        if reason is None and user and operation not in self.users.permissions(user):
            return f"user {user!r} may not {operation}"
        return reason

    def _peer_allows(self, operation: Operation, calling_ae_title: str, address: str) -> str | None:
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

    def destination(self, ae_title: str) -> tuple[str, int, bool] | None:
        """Where a C-MOVE to ``ae_title`` goes, if the nodes table knows it: host, port,
        and whether over TLS."""
        node = self.peers.get(ae_title)
        return (node.host, node.port, node.tls) if node is not None and node.host else None


class NormalizedService(Protocol):
    """A DIMSE-N service of the archive (MPPS, Storage Commitment), for one SOP class."""

    sop_class_uid: str
    operation: Operation
    """The permission a peer needs for it (``allow`` in the nodes table)."""

    def contexts(self) -> list[PresentationContext]:
        """The presentation contexts it is offered on."""

    def serve(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        """Carry out ``request``; raise :class:`DimseStatus` for a failure."""


class ArchiveSCP:
    """The archive's answer to each request (see :class:`pacskit.net.acceptor.Services`),
    over one :class:`Ingest` and one index; DIMSE-N requests go to the
    :class:`NormalizedService` registered for their SOP class (:attr:`normalized_services`)."""

    def __init__(self, settings: Settings, ingest: Ingest, index: Index) -> None:
        self.settings = settings
        self.ingest = ingest
        self.index = index
        self.access = AccessTable(settings)
        self.worklist = Worklist(index)
        self.normalized_services: dict[str, NormalizedService] = {}

    def register(self, service: NormalizedService) -> None:
        """Serve ``service``'s SOP class (its contexts are then offered)."""
        self.normalized_services[service.sop_class_uid] = service

    def supported_contexts(self) -> list[PresentationContext]:
        """Every service: Verification, Storage (every syntax, either role) and
        Query/Retrieve FIND, GET and MOVE in both information models."""
        contexts = [build_context(Verification, QUERY_SYNTAXES)]
        for uid in storage_sop_classes():
            context = build_context(uid, EVERY_SYNTAX)
            context.scu_role = context.scp_role = True
            contexts.append(context)
        contexts += [build_context(uid, QUERY_SYNTAXES) for uid in MODELS]
        if self.settings.archive.worklist.enabled:
            contexts.append(build_context(MODALITY_WORKLIST_FIND, QUERY_SYNTAXES))
        for service in self.normalized_services.values():
            contexts += service.contexts()
        return contexts

    def admit(self, peer: Peer) -> str | None:
        return self.access.admits(peer.ae_title, peer.address)

    def allows(self, peer: Peer, operation: str, sop_class_uid: str) -> str | None:
        if operation == "find" and sop_class_uid == MODALITY_WORKLIST_FIND:
            operation = "worklist"
        elif operation.startswith("n-"):
            service = self.normalized_services.get(sop_class_uid)
            if service is None:
                return None
            operation = service.operation
        if operation not in OPERATIONS:
            return f"{operation!r} is not an operation of the archive"
        reason = self.access.allows(operation, peer.ae_title, peer.address, peer.user)
        if reason is not None:
            LOG.warning("refused %s from %s at %s: %s", operation, peer.ae_title, peer.address, reason)
        return reason

    def echo(self, peer: Peer) -> None:
        self._check("echo", peer)

    def store(self, peer: Peer, request: StoreRequest) -> _IngestSink:
        self._check("store", peer)
        return _IngestSink(self.ingest.receive(request.sop_class_uid, request.sop_instance_uid,
                                               request.transfer_syntax, peer.ae_title))

    def find(self, peer: Peer, sop_class_uid: str, identifier: Dataset) -> Iterator[Dataset | PreEncoded]:
        if sop_class_uid == MODALITY_WORKLIST_FIND:
            return self._worklist_find(peer, identifier)
        self._check("find", peer)
        query = self._query(peer, sop_class_uid, identifier)
        return self.index.find(query, limit=self.settings.archive.find_limit)

    def _worklist_find(self, peer: Peer, identifier: Dataset) -> Iterator[Answer]:
        """Modality Worklist C-FIND (PS3.4 K.4.1.3): a key sequence with more than one
        item, or a malformed value, is answered 0xA900 (Identifier Does Not Match SOP
        Class, Table K.4-1), as DCMTK's wlmscpfs does."""
        self._check("worklist", peer)
        try:
            check_identifier(identifier)
        except IdentifierError as exc:
            LOG.warning("bad worklist query from %s: %s", peer.ae_title, exc)
            tag = tag_for_keyword(exc.offending) if exc.offending else None
            raise DimseStatus(IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, str(exc)[:64],
                              offending=(tag,) if tag is not None else ()) from None
        options = self.settings.archive.worklist
        node = self.access.peers.get(peer.ae_title)
        limit = node.worklist_limit if node is not None and node.worklist_limit else options.limit
        station = peer.ae_title if options.calling_ae_as_station else None
        return _capped(self.worklist.answers(identifier, station=station, limit=limit + 1), limit, peer)

    def retrieve(self, peer: Peer, operation: str, sop_class_uid: str,
                 identifier: Dataset) -> list[Retrievable]:
        self._check(operation, peer)  # type: ignore[arg-type]
        query = self._query(peer, sop_class_uid, identifier)
        root = self.ingest.files
        return [_Stored(root / item.path, item) for item in self.index.instances(query)]

    def destination(self, peer: Peer, ae_title: str) -> Node:
        found = self.access.destination(ae_title.strip())
        if found is None:
            LOG.warning("C-MOVE from %s to unknown destination %r", peer.ae_title, ae_title)
            raise DimseStatus(MOVE_DESTINATION_UNKNOWN, f"{ae_title.strip()!r} is not a known peer")
        return Node(ae_title=ae_title.strip(), host=found[0], port=found[1], tls=found[2])

    def normalized(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        service = self.normalized_services.get(request.sop_class_uid)
        if service is None:
            raise DimseStatus(UNRECOGNIZED_OPERATION, f"{request.operation} is not served for this SOP class")
        return service.serve(peer, request)

    def _query(self, peer: Peer, sop_class_uid: str, identifier: Dataset) -> Query:
        try:
            return Query.from_identifier(identifier, MODELS[sop_class_uid])
        except (QueryError, KeyError, ValueError) as exc:
            LOG.warning("bad query from %s: %s", peer.ae_title, exc)
            raise DimseStatus(IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, str(exc)[:64]) from None

    def _check(self, operation: Operation, peer: Peer) -> None:
        reason = self.access.allows(operation, peer.ae_title, peer.address, peer.user)
        if reason is not None:
            LOG.warning("refused %s from %s at %s: %s", operation, peer.ae_title, peer.address, reason)
            raise DimseStatus(NOT_AUTHORIZED, reason)


@dataclass(frozen=True)
class _IngestSink:
    """A C-STORE's dataset, written into the archive as it arrives."""

    incoming: Incoming

    def write(self, data: Fragment) -> None:
        self.incoming.write(data)

    def discard(self) -> None:
        self.incoming.discard()

    def finish(self) -> tuple[str, str]:
        outcome = self.incoming.finish()
        if outcome.status != SUCCESS:
            raise DimseStatus(outcome.status, outcome.reason)
        return outcome.study_uid, outcome.series_uid


@dataclass(frozen=True)
class _Stored:
    """A stored instance where a C-GET or C-MOVE finds it."""

    path: Path
    instance: StoredInstance

    @property
    def sop_class_uid(self) -> str:
        return self.instance.sop_class_uid

    @property
    def sop_instance_uid(self) -> str:
        return self.instance.sop_instance_uid

    @property
    def transfer_syntax(self) -> str:
        return self.instance.transfer_syntax


def _capped(matches: Iterator[Answer], limit: int, peer: Peer) -> Iterator[Answer]:
    """The first ``limit`` matches; the log says when there were more."""
    for count, match in enumerate(matches):
        if count == limit:
            LOG.warning("worklist query from %s: more than %d matches, %d sent", peer.ae_title, limit, limit)
            return
        yield match


def _same_host(configured: str | None, address: str) -> bool:
    # The access table holds only nodes with a host; None (a node without one) never matches.
    if configured is None:
        return False
    if configured == address:
        return True
    try:
        return address in {info[4][0] for info in socket.getaddrinfo(configured, None)}
    except OSError:
        return False
