"""The forward storage mode on asyncio: :meth:`pacskit.AsyncClient.get` with ``forward_to``
a DIMSE node or a DICOMweb server, with no thread.

Each instance the C-GET (or the C-MOVE to ourselves, or the WADO-RS request) brings is
sent on as it arrives:

- to a DIMSE node by C-STORE (PS3.4 Annex B) over one association kept for the whole
  retrieve (:class:`AsyncDimseSink`, :class:`pacskit.sinks.DimseSink` on the loop: the
  same contexts, opened lazily with the first instance, proposed again on a new
  association for an instance whose (SOP class, transfer syntax) the peer did not accept
  and that was not offered yet; an association lost mid-store opened again once for that
  instance);
- to a DICOMweb server by STOW-RS (PS3.18 10.5) on ``httpx.AsyncClient``
  (:class:`AsyncWebSink`, :class:`pacskit.sinks.WebSink` on the loop: the same scratch
  folder and batches, :class:`pacskit.sinks.StowBatches`). The server's refusals come
  back per instance, with its reasons, when a batch is answered: they are counted once
  the retrieve ends (``local_failures``), the source having been told the instance was
  taken, as the blocking forward does.

Backpressure: the C-STORE-RSP to the source waits for the forward of its instance
(:class:`ForwardReceiver` is awaited by the C-GET association,
:meth:`pacskit.net.aio_association.AsyncAssociation.served`, and by each association the
peer opens to our Storage SCP for a C-MOVE); nothing more is read from that association
meanwhile, so the source is held back by TCP flow control (a WADO-RS answer is not read
further). At most one received instance per association bringing them (one for a C-GET)
is held at a time, in memory while it is sent on (as the blocking sink holds it), besides
a STOW-RS batch in its scratch folder. An instance a DIMSE node refuses fails at the
source (our C-STORE-RSP carries the failure) and is in ``local_failures``; the others go on.

Once the task running the retrieve is being cancelled (a cancellation, a timeout),
nothing more is forwarded: an instance still arriving is refused, the forward's
association is aborted, a C-STORE in flight with it, and a STOW-RS request in flight is
dropped; the batch not sent yet is not sent, and the scratch folder is removed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pacskit.cancellation import Cancellation, RetrieveCancelled
from pacskit.errors import (
    AssociationAborted,
    DimseFailure,
    NetworkTimeout,
    OutputError,
    PacskitError,
)
from pacskit.models import InstanceFailure, RetrieveResult
from pacskit.net.aio_association import AsyncAssociation, associate
from pacskit.net.aio_limits import ConnectionLimit
from pacskit.net.aio_store import AsyncFileSender
from pacskit.net.retrieve import InstanceRejected, Received
from pacskit.net.store import SendOutcome, conversion_timeout, storage_targets
from pacskit.nodes import Node
from pacskit.privacy import PrivacyPolicy
from pacskit.retrieve import CANCELLED, ProgressCallback, Receiver, _check_inflation
from pacskit.scan import HeldInstance, read_bytes
from pacskit.settings import Settings
from pacskit.sinks import Filter, InstanceRefused, StowBatches, _Kind, filtered, forward_proposal
from pacskit.storage import WrittenInstance

if TYPE_CHECKING:
    from pacskit.web.aio_client import AsyncDicomWebClient


class ForwardSink(Protocol):
    """Where a forward on the loop sends each instance (:class:`AsyncDimseSink`,
    :class:`AsyncWebSink`)."""

    label: str

    async def write(self, data: Received) -> WrittenInstance: ...

    async def close(self, *, abort: bool = False) -> list[InstanceFailure]: ...


class AsyncDimseSink:
    """A DIMSE node, by C-STORE on one association kept for the whole retrieve, on the
    event loop (see the module): :class:`pacskit.sinks.DimseSink`'s behaviour, its
    associations within ``connections``. Instances are sent one at a time.

    Args:
        settings: our AE title and timeouts.
        node: the destination.
        connections: the slots of the client (:attr:`pacskit.AsyncClient.connections`).
        filters: applied in order to each instance's bytes (de-identification).
    """

    def __init__(self, settings: Settings, node: Node, connections: ConnectionLimit | None = None,
                 filters: Sequence[Filter] = ()) -> None:
        self.settings = settings
        self.node = node
        self.label = node.label
        self.connections = connections
        self.filters = list(filters)
        self.associations = 0
        self._offered: dict[tuple[str, str], _Kind] = {}
        self._stack: AsyncExitStack | None = None
        self._association: AsyncAssociation | None = None
        self._sender: AsyncFileSender | None = None
        self._lock = asyncio.Lock()

    async def write(self, data: Received) -> WrittenInstance:
        """C-STORE one instance and wait for its response.

        Raises:
            InstanceRefused: the node refused it (its status and reason in the message).
            OutputError: not a DICOM instance.
            NetworkError, DimseFailure: no association could be opened for it.
        """
        raw = filtered(data, self.filters)
        async with self._lock:
            try:
                item = read_bytes(raw)
            except Exception as exc:  # noqa: BLE001 - not DICOM: this instance fails alone
                raise OutputError(f"not a DICOM instance ({type(exc).__name__})") from None
            try:
                outcome = await self._send(item)
            except BaseException:
                await self._release(abort=True)
                raise
        if outcome.status is None or outcome.outcome.value == "failure":
            raise InstanceRefused(outcome.reason or f"{self.label} refused it")
        return WrittenInstance(Path(self.label) / item.sop_instance_uid, item.sop_instance_uid, False, len(raw))

    async def _send(self, item: HeldInstance) -> SendOutcome:
        key = (item.sop_class_uid, item.transfer_syntax)
        if self._sender is None or key not in self._sender.contexts and key not in self._offered:
            self._offered.setdefault(key, _Kind(*key))
            await self._open()
        assert self._sender is not None
        try:
            return await self._sender.send(item)
        except (AssociationAborted, NetworkTimeout):
            await self._open()
            assert self._sender is not None
            return await self._sender.send(item)

    async def _open(self) -> None:
        await self._release()
        contexts, self._offered = forward_proposal(self._offered)
        stack = AsyncExitStack()
        association = await stack.enter_async_context(associate(self.settings, self.node, contexts,
                                                                connections=self.connections))
        self._stack, self._association = stack, association
        self.associations += 1
        if not association.contexts:
            await self._release()
            raise DimseFailure(f"{self.label} accepted none of the storage SOP classes offered")
        self._sender = AsyncFileSender(association, storage_targets(association),  # type: ignore[arg-type]
                                       conversion_timeout=conversion_timeout(self.settings))

    async def _release(self, *, abort: bool = False) -> None:
        stack, association = self._stack, self._association
        self._stack, self._association, self._sender = None, None, None
        if association is not None and abort:
            association.abort()
        if stack is not None:
            try:
                await stack.aclose()
            except PacskitError:
                pass

    async def close(self, *, abort: bool = False) -> list[InstanceFailure]:
        """Release the association (abort it with ``abort``: a cancellation, a timeout);
        no late failure (each was the instance's own)."""
        await self._release(abort=abort)
        return []


class AsyncWebSink(StowBatches):
    """A DICOMweb server, by STOW-RS in batches of up to ``batch`` instances held in a
    scratch folder, on the event loop (see the module): :class:`pacskit.sinks.WebSink`'s
    behaviour, its refusals returned by :meth:`close`.

    Args:
        client: the DICOMweb client (closed by :meth:`close`).
        filters: applied in order to each instance's bytes (de-identification).
    """

    def __init__(self, client: AsyncDicomWebClient, filters: Sequence[Filter] = (), batch: int = 50) -> None:
        super().__init__(client.node.label, None, batch)
        self.client = client
        self.filters = list(filters)
        self._lock = asyncio.Lock()

    async def write(self, data: Received) -> WrittenInstance:
        """Hold one instance; STOW-RS the batch once it is full, and wait for its answer.

        Raises:
            OutputError: not a DICOM instance.
        """
        raw = filtered(data, self.filters)
        async with self._lock:
            written, full = self._hold(raw)
            if full:
                await self._flush()
        return written

    async def _flush(self) -> None:
        pending = self._take_batch()
        try:
            if pending:
                await self.client.store(pending, self._tally)
        except PacskitError as exc:
            self._batch_failed(pending, exc)
        finally:
            self._drop(pending)

    async def close(self, *, abort: bool = False) -> list[InstanceFailure]:
        """Send the last batch and return every instance the server refused, each with
        its reason; with ``abort`` (a cancellation, a timeout) send nothing more, the
        instances held then returned as cancelled. The scratch folder is removed either way."""
        dropped: list[InstanceFailure] = []
        try:
            if abort:
                dropped = self._cancelled_held()
            else:
                async with self._lock:
                    await self._flush()
        finally:
            self._remove_scratch()
            await self.client.aclose()
        return self.failures + dropped


class ForwardReceiver(Receiver):
    """A :class:`~pacskit.retrieve.Receiver` whose instances are awaited on
    :meth:`forward` (sent on to ``sink``), with the same checks, tally and progress.

    ``owner`` is the task running the retrieve: once it is being cancelled, every
    instance is refused. Called as a blocking handler (what arrives while a C-CANCEL
    settles), it refuses the instance.
    """

    def __init__(self, result: RetrieveResult, sink: ForwardSink, privacy: PrivacyPolicy,
                 progress: ProgressCallback | None, expected: int | None,
                 cancellation: Cancellation | None, owner: asyncio.Task[object] | None) -> None:
        super().__init__(result, None, privacy, progress, expected, cancellation)
        self.forward_sink = sink
        self.owner = owner

    def __call__(self, data: Received) -> None:
        self._fail(data, CANCELLED)
        raise InstanceRejected(CANCELLED)

    def _stopped(self) -> bool:
        if self.owner is not None and self.owner.cancelling() and self.cancellation is not None:
            self.cancellation.cancel()
        return (self.cancellation is not None and self.cancellation.cancelled) or \
            (self.owner is not None and self.owner.cancelling() > 0)

    async def forward(self, data: Received) -> None:
        """Send one received instance on, and count it.

        Raises:
            InstanceRejected: it was not forwarded (its failure recorded).
        """
        size = len(data) if isinstance(data, bytes | bytearray) else os.fstat(data.fileno()).st_size
        with self.refusing(data):
            _check_inflation(data, size)
            if self._stopped():
                raise RetrieveCancelled
            written = await self.forward_sink.write(data)
        with self.lock:
            self.result.files.append(written.path)
            self.result.written += 1
            self.result.bytes += size
            self.state.received += 1
            self.state.bytes = self.result.bytes
        self._report()

    async def take_async(self, data: Received) -> bool:
        """Forward one instance received outside DIMSE (a WADO-RS part); whether it was
        (a failure is in ``result.local_failures``)."""
        try:
            await self.forward(data)
        except InstanceRejected:
            return False
        return True
