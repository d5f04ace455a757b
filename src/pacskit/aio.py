"""The asynchronous client: the same calls as :class:`~pacskit.client.Client`, awaited.

The sync core does the work in a worker thread; this layer only waits on it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pacskit.client import Client
from pacskit.models import EchoResult
from pacskit.nodes import Node
from pacskit.settings import Settings


class AsyncClient:
    """Async twin of :class:`~pacskit.client.Client`; same arguments, same exceptions."""

    def __init__(self, settings: Settings | None = None, *, config_file: Path | str | None = None):
        self._sync = Client(settings, config_file=config_file)

    @property
    def settings(self) -> Settings:
        """The settings in force."""
        return self._sync.settings

    async def echo(self, node: Node | str) -> EchoResult:
        """See :meth:`Client.echo`."""
        return await asyncio.to_thread(self._sync.echo, node)
