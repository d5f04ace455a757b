"""Opening associations, and the one place where pynetdicom's outcomes become exceptions."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pynetdicom.association import Association
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.presentation import PresentationContext

from pacskit.errors import (
    AssociationAborted,
    AssociationRejected,
    ConnectionRefused,
    HostNotFound,
    NetworkError,
    NetworkTimeout,
)
from pacskit.net.ae import NoDelaySocket, make_ae
from pacskit.nodes import Node
from pacskit.settings import Settings

# PS3.8 Table 9-21: (source, reason) -> meaning
_REJECT_REASONS = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised",
    (1, 7): "called AE title not recognised",
    (2, 1): "no reason given (ACSE)",
    (2, 2): "protocol version not supported",
    (3, 0): "reserved",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}


def resolve_host(host: str, port: int) -> str:
    """The IP address to connect to for ``host`` (IPv4 preferred).

    Raises:
        HostNotFound: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise HostNotFound(f"host {host!r} not found ({reason})") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


@contextmanager
def associate(
    settings: Settings,
    node: Node,
    contexts: Sequence[PresentationContext],
    *,
    ext_neg: Sequence[Any] | None = None,
    evt_handlers: Sequence[tuple[Any, ...]] | None = None,
) -> Iterator[Association]:
    """Open an association with ``node`` proposing ``contexts``; release it on exit.

    If the body raises, the association is aborted rather than released.

    Raises:
        HostNotFound, ConnectionRefused, NetworkTimeout, AssociationRejected,
        AssociationAborted, NetworkError: the association could not be established.
    """
    address = resolve_host(node.host, node.port)
    ae = make_ae(settings)
    started = time.monotonic()
    assoc = ae.associate(
        address,
        node.port,
        contexts=list(contexts),
        ae_title=node.ae_title,
        ext_neg=list(ext_neg) if ext_neg else None,
        evt_handlers=list(evt_handlers) if evt_handlers else None,
    )
    if not assoc.is_established:
        raise _association_failure(assoc, node, settings, time.monotonic() - started)
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    else:
        if assoc.is_established:
            assoc.release()


def _unread_rejection(assoc: Association) -> A_ASSOCIATE | None:
    """An A-ASSOCIATE-RJ that arrived, and the connection closed, before pynetdicom's
    ACSE looked: it then aborts without reading the rejection."""
    for primitive in list(assoc.dul.to_user_queue.queue):
        if isinstance(primitive, A_ASSOCIATE) and primitive.result in (0x01, 0x02):
            return primitive
    return None


def _association_failure(
    assoc: Association, node: Node, settings: Settings, elapsed: float
) -> NetworkError:
    where = node.description
    primitive = assoc.acceptor.primitive if assoc.is_rejected else _unread_rejection(assoc)
    if primitive is not None:
        result = int(getattr(primitive, "result", 0) or 0)
        source = int(getattr(primitive, "result_source", 0) or 0)
        reason = int(getattr(primitive, "diagnostic", 0) or 0)
        kind = "permanently" if result == 1 else "transiently"
        meaning = _REJECT_REASONS.get((source, reason), f"reason {reason}")
        return AssociationRejected(
            f"{where} rejected the association {kind}: {meaning}",
            result=result,
            source=source,
            reason=reason,
        )
    sock = assoc.dul.socket
    error = sock.connect_error if isinstance(sock, NoDelaySocket) else None
    if isinstance(error, ConnectionRefusedError):
        return ConnectionRefused(f"{where}: connection refused (nothing listens on port {node.port})")
    if isinstance(error, TimeoutError):
        return NetworkTimeout(
            f"{where}: no TCP connection within {settings.connect_timeout:g} s"
        )
    if error is not None:
        return NetworkError(f"{where}: cannot connect: {error.strerror or error}")
    if elapsed >= settings.acse_timeout:
        return NetworkTimeout(
            f"{where}: no answer to the association request within {settings.acse_timeout:g} s"
        )
    return AssociationAborted(f"{where} aborted the association request")
