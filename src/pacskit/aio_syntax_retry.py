"""Asking again, on asyncio, for the instances a C-GET could not bring for want of a
presentation context: :func:`pacskit.syntax_retry.retrieve_again` on
:mod:`pacskit.net.aio_find` and :mod:`pacskit.net.aio_retrieve`, with the same locating
C-FIND, the same rounds of proposals (each leading with the next syntax), the same
requests and the same outcome."""

from __future__ import annotations

from collections.abc import Sequence

from pydicom import Dataset
from pynetdicom.presentation import PresentationContext

from pacskit.errors import DimseError, NetworkError, NoStorageRole, ServiceNotSupported
from pacskit.net.aio_find import find_session
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.net.aio_retrieve import get_session
from pacskit.net.retrieve import AsyncInstanceHandler, InstanceHandler
from pacskit.nodes import Node
from pacskit.settings import Settings
from pacskit.syntax_retry import (
    Missing,
    RetryOutcome,
    asking_identifiers,
    concluded,
    locating_queries,
    record_answers,
    rounds,
    take_located,
    unlocated_outcome,
    wanted_of,
)


async def retrieve_again(settings: Settings, node: Node, model: str,
                         failures: Sequence[tuple[Dataset, list[str]]],
                         on_instance: InstanceHandler, connections: ConnectionLimit | None = None, *,
                         on_received: AsyncInstanceHandler | None = None) -> RetryOutcome:
    """As :func:`pacskit.syntax_retry.retrieve_again`, on the loop, within ``connections``
    (each instance awaited on ``on_received`` when given, see
    :func:`pacskit.net.aio_retrieve.get_session`)."""
    wanted = wanted_of(failures)
    outcome = RetryOutcome()
    try:
        missing = await locate(settings, node, model, failures, connections)
    except (NetworkError, DimseError) as exc:
        return unlocated_outcome(node, wanted, exc)
    try:
        for contexts, targets in rounds(list(missing.values()), outcome):
            await _ask(settings, node, model, contexts, targets, on_instance, outcome, connections, on_received)
    except (NetworkError, DimseError) as exc:
        outcome.reason = f"asking {node.label} again failed: {exc}"
    return concluded(outcome, node, wanted, missing)


async def locate(settings: Settings, node: Node, model: str,
                 failures: Sequence[tuple[Dataset, list[str]]],
                 connections: ConnectionLimit | None = None) -> dict[str, Missing]:
    """As :func:`pacskit.syntax_retry.locate`, on the loop, within ``connections``.

    Raises:
        NetworkError, DimseError: the C-FIND failed.
    """
    found: dict[str, Missing] = {}
    async with find_session(settings, node, model, connections) as session:
        for query, chunk, identifier in locating_queries(model, failures):
            matches = session.find(query)
            try:
                async for match in matches:
                    take_located(found, model, match, chunk, identifier)
            finally:
                await matches.aclose()
    return found


async def _ask(settings: Settings, node: Node, model: str, contexts: list[PresentationContext],
               targets: list[Missing], on_instance: InstanceHandler, outcome: RetryOutcome,
               connections: ConnectionLimit | None, on_received: AsyncInstanceHandler | None) -> None:
    try:
        async with get_session(settings, node, model, on_instance, storage=contexts,
                               connections=connections, on_received=on_received) as session:
            session.answered = {}
            for identifier in asking_identifiers(targets, outcome):
                await session.c_get(identifier)
            record_answers(session.answered, outcome)
    except (NoStorageRole, ServiceNotSupported):
        return
