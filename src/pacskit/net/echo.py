"""Verification service, SCU side (PS3.4 Annex A)."""

from __future__ import annotations

import time

from pacskit.errors import DimseError, ServiceNotSupported
from pacskit.net.association import associate
from pacskit.net.commands import ERROR_COMMENT, STATUS, c_echo_rq
from pacskit.net.exchange import MessageExchange
from pacskit.net.status import check_status
from pacskit.net.ul.associate_rq import Context
from pacskit.net.wire import Message
from pacskit.nodes import Node
from pacskit.settings import Settings

VERIFICATION = "1.2.840.10008.1.1"
"""The Verification SOP Class (PS3.4 A.4, PS3.6 Annex A)."""


def c_echo(settings: Settings, node: Node) -> tuple[int, float, float]:
    """Associate with ``node`` and send one C-ECHO.

    Returns:
        (status, seconds to associate, seconds for the C-ECHO round trip)

    Raises:
        NetworkError: the association failed (see :func:`associate`).
        ServiceNotSupported: the peer did not accept the Verification SOP Class.
        DimseFailure, NetworkTimeout, AssociationAborted: the C-ECHO failed.
    """
    started = time.perf_counter()
    with associate(settings, node, [Context(VERIFICATION)]) as assoc:
        connected = time.perf_counter()
        context_id = verification_context(assoc, node)
        message_id = assoc.next_message_id()
        response = next(assoc.request(context_id, c_echo_rq(message_id), message_id=message_id))
        status = echo_status(response, node)
        done = time.perf_counter()
    return status, connected - started, done - connected


def verification_context(association: MessageExchange, node: Node) -> int:
    """The accepted Verification context's ID.

    Raises:
        ServiceNotSupported: the peer did not accept the Verification SOP Class.
    """
    context = association.negotiated.context_for(VERIFICATION) if association.negotiated else None
    if context is None:
        raise ServiceNotSupported(f"{node.label} does not accept Verification (C-ECHO)")
    return context.context_id


def echo_status(response: Message, node: Node) -> int:
    """The status of a C-ECHO-RSP (PS3.7 9.3.5.2), checked.

    Raises:
        DimseFailure, DimseError: a failure status, or none.
    """
    status = response.us(STATUS)
    if status is None:
        raise DimseError(f"{node.label} sent a C-ECHO response without a status")
    check_status(status, response.text(ERROR_COMMENT), "C-ECHO", node)
    return status
