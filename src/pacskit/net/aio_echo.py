"""Verification service, SCU side, on asyncio (PS3.4 Annex A): :func:`pacskit.net.echo.c_echo`
on :mod:`pacskit.net.aio_association`."""

from __future__ import annotations

import time

from pynetdicom import build_context
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]  # made by globals()

from pacskit.errors import DimseError
from pacskit.net.aio_association import associate
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.net.commands import c_echo_rq
from pacskit.net.echo import echo_status, verification_context
from pacskit.nodes import Node
from pacskit.settings import Settings


async def c_echo(settings: Settings, node: Node, connections: ConnectionLimit | None = None) -> tuple[int, float, float]:
    """Associate with ``node`` (within ``connections``) and send one C-ECHO; as
    :func:`pacskit.net.echo.c_echo`.

    Returns:
        (status, seconds to associate, seconds for the C-ECHO round trip)
    """
    started = time.perf_counter()
    async with associate(settings, node, [build_context(Verification)], connections=connections) as assoc:
        connected = time.perf_counter()
        context_id = verification_context(assoc, node)
        message_id = assoc.next_message_id()
        responses = assoc.request(context_id, c_echo_rq(message_id), message_id=message_id)
        try:
            response = await anext(responses)
        except StopAsyncIteration:
            raise DimseError(f"{node.label} sent no C-ECHO response") from None
        finally:
            await responses.aclose()
        status = echo_status(response, node)
        done = time.perf_counter()
    return status, connected - started, done - connected
