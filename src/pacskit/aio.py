"""The asynchronous client: the same calls as :class:`~pacskit.client.Client`, awaited.

The sync core does the work in a worker thread; this layer only waits on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pacskit.client import Client
from pacskit.models import EchoResult, Matches, MoveResult, RetrieveResult, StoreResult
from pacskit.nodes import Node
from pacskit.query import Query
from pacskit.settings import Settings


class AsyncClient:
    """Async twin of :class:`~pacskit.client.Client`; same arguments, same exceptions."""

    def __init__(self, settings: Settings | None = None, *, config_file: Path | str | None = None):
        self.sync = Client(settings, config_file=config_file)

    @property
    def settings(self) -> Settings:
        """The settings in force."""
        return self.sync.settings

    async def echo(self, node: Node | str) -> EchoResult:
        """See :meth:`Client.echo`."""
        return await asyncio.to_thread(self.sync.echo, node)

    async def find(self, node: Node | str, query: Query, **options: Any) -> Matches:
        """See :meth:`Client.find` (``deidentify``, ``deid_options``)."""
        return await asyncio.to_thread(self.sync.find, node, query, **options)

    async def get(self, node: Node | str, query: Query, output: Path | str | None = None,
                  **options: Any) -> RetrieveResult:
        """See :meth:`Client.get`."""
        return await asyncio.to_thread(self.sync.get, node, query, output, **options)

    async def get_study(self, node: Node | str, study_uid: str, output: Path | str | None = None,
                        **options: Any) -> RetrieveResult:
        """See :meth:`Client.get_study`."""
        return await asyncio.to_thread(self.sync.get_study, node, study_uid, output, **options)

    async def get_series(self, node: Node | str, study_uid: str, series_uid: str,
                         output: Path | str | None = None, **options: Any) -> RetrieveResult:
        """See :meth:`Client.get_series`."""
        return await asyncio.to_thread(self.sync.get_series, node, study_uid, series_uid, output,
                                       **options)

    async def get_instances(self, node: Node | str, study_uid: str, series_uid: str,
                            sop_instance_uids: list[str], output: Path | str | None = None,
                            **options: Any) -> RetrieveResult:
        """See :meth:`Client.get_instances`."""
        return await asyncio.to_thread(self.sync.get_instances, node, study_uid, series_uid,
                                       sop_instance_uids, output, **options)

    async def store(self, paths: Iterable[Path | str], node: Node | str,
                    **options: Any) -> StoreResult:
        """See :meth:`Client.store`."""
        return await asyncio.to_thread(self.sync.store, paths, node, **options)

    async def move(self, node: Node | str, query: Query, destination: str) -> MoveResult:
        """See :meth:`Client.move`."""
        return await asyncio.to_thread(self.sync.move, node, query, destination)
