"""The pynetdicom application entity, configured once from settings.

This module also sets pynetdicom's global configuration, once: identifiers are never
logged, files are sent without being decoded, every association uses the event-driven
upper layer of :mod:`pacskit.net.dul`, and a server does not deep-copy its supported
contexts for every association.

pynetdicom never sets ``TCP_NODELAY``; without it every small PDU waits ~40 ms for a
delayed ACK. Requestor sockets get it in :class:`NoDelaySocket`, acceptor sockets in the
``EVT_CONN_OPEN`` handler every server is started with (:data:`NODELAY_HANDLER`).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pynetdicom.association
import pynetdicom.transport
from pydicom import Dataset, dcmread
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.transport import AddressInformation, AssociationSocket

from pacskit.net.dul import EventDrivenDUL, ReactorClock
from pacskit.settings import Settings

_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False
_config.LOG_HANDLER_LEVEL = "none"
_config.STORE_SEND_CHUNKED_DATASET = True
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
pynetdicom.association.DULServiceProvider = EventDrivenDUL  # type: ignore[misc]
pynetdicom.association.time = ReactorClock()  # type: ignore[assignment]


def _shared_contexts(contexts: list[Any]) -> list[Any]:
    """What pynetdicom's server hands each association instead of a deep copy of every
    supported context: negotiation only reads them, and copying a full storage list
    costs ~35 ms per association."""
    return list(contexts)


pynetdicom.transport.deepcopy = _shared_contexts  # type: ignore[attr-defined]


class StoredFile(Dataset):
    """A stored file that a C-GET or C-MOVE handler yields to be sent as it is on disk.

    pynetdicom's Query/Retrieve handlers accept only datasets, while its C-STORE can
    stream a file; this carries the path from one to the other. When the peer accepted
    no context with the file's transfer syntax, the file is decoded (decompressed if it
    must be) and sent in a syntax the peer did accept.
    """

    def __init__(self, path: Path, sop_instance_uid: str) -> None:
        super().__init__()
        self._pacskit_path = path
        self.SOPInstanceUID = sop_instance_uid


_send_c_store = Association.send_c_store


def _send_stored_file(self: Association, dataset: Any, *args: Any, **kwargs: Any) -> Dataset:
    if not isinstance(dataset, StoredFile):
        return _send_c_store(self, dataset, *args, **kwargs)
    try:
        return _send_c_store(self, dataset._pacskit_path, *args, **kwargs)
    except ValueError:
        decoded = dcmread(dataset._pacskit_path)
        if decoded.file_meta.TransferSyntaxUID.is_compressed:
            decoded.decompress(generate_instance_uid=False)
        return _send_c_store(self, decoded, *args, **kwargs)


Association.send_c_store = _send_stored_file  # type: ignore[method-assign]


class NoDelaySocket(AssociationSocket):
    """A requestor socket with ``TCP_NODELAY``, which remembers why it failed to connect."""

    connect_error: OSError | None = None

    def _create_socket(self, address: AddressInformation) -> socket.socket:
        family = socket.AF_INET if address.is_ipv4 else socket.AF_INET6
        sock = _RecordingSocket(family, socket.SOCK_STREAM)
        sock.owner = self
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.assoc.network_timeout is not None:
            sock.settimeout(self.assoc.network_timeout)
        sock.bind(address.as_tuple)
        self._is_connected = False
        return sock


class _RecordingSocket(socket.socket):
    owner: NoDelaySocket

    def connect(self, address: object) -> None:
        try:
            super().connect(address)  # type: ignore[arg-type]
        except OSError as exc:
            self.owner.connect_error = exc
            raise


def set_nodelay(event: evt.Event) -> None:
    """``EVT_CONN_OPEN`` handler: set ``TCP_NODELAY`` on an accepted connection."""
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


NODELAY_HANDLER = (evt.EVT_CONN_OPEN, set_nodelay)


class PacskitAE(AE):
    """pynetdicom's AE, with :class:`NoDelaySocket` for every association it requests."""

    def _create_socket(self, assoc, address, tls_args):  # type: ignore[no-untyped-def]
        sock = NoDelaySocket(assoc, address=address)
        sock.tls_args = tls_args
        return sock


def make_ae(settings: Settings) -> PacskitAE:
    """An AE with our title, timeouts and maximum PDU size."""
    ae = PacskitAE(ae_title=settings.ae_title)
    ae.acse_timeout = settings.acse_timeout
    ae.dimse_timeout = settings.dimse_timeout
    ae.network_timeout = settings.network_timeout
    ae.connection_timeout = settings.connect_timeout
    ae.maximum_pdu_size = settings.max_pdu
    return ae
