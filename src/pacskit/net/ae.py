"""The pynetdicom application entity, configured once from settings.

This module also sets pynetdicom's global configuration, once: identifiers are never
logged, files are sent without being decoded, and every association uses the
event-driven upper layer of :mod:`pacskit.net.dul`.

pynetdicom never sets ``TCP_NODELAY``; without it every small PDU waits ~40 ms for a
delayed ACK. Requestor sockets get it in :class:`NoDelaySocket`, acceptor sockets in the
``EVT_CONN_OPEN`` handler every server is started with (:data:`NODELAY_HANDLER`).
"""

from __future__ import annotations

import logging
import socket

import pynetdicom.association
from pynetdicom import AE, _config, evt
from pynetdicom.transport import AddressInformation, AssociationSocket

from pacskit.net.dul import EventDrivenDUL
from pacskit.settings import Settings

_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False
_config.LOG_HANDLER_LEVEL = "none"
_config.STORE_SEND_CHUNKED_DATASET = True
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
pynetdicom.association.DULServiceProvider = EventDrivenDUL  # type: ignore[misc]


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
