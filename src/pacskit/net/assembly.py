"""DIMSE messages from and to P-DATA-TF PDUs, without I/O (PS3.7 Section 9 and Annex E,
PS3.8 9.3.5): the piece every driver of an association shares, the blocking one
(:mod:`pacskit.net.association`) and the asyncio one (:mod:`pacskit.net.aio_association`).

Bytes in, messages out: :meth:`MessageAssembler.feed` takes one P-DATA-TF PDU and
queues its presentation data values, each checked to be on an accepted presentation
context; :meth:`MessageAssembler.next_message` assembles them into a
:class:`~pacskit.net.wire.Message`, or says it needs more. Messages in, bytes out:
:func:`message_pdus` splits a command and its dataset into P-DATA-TF PDUs.

A break of the protocol raises :class:`ProtocolViolation`; the driver aborts the
association (A-ABORT, service provider, invalid PDU parameter value).
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Container, Iterator
from typing import BinaryIO

from pacskit.net.commands import COMMAND_DATA_SET_TYPE
from pacskit.net.memory_budget import UNLIMITED, MemoryBudget
from pacskit.net.wire import (
    COMMAND,
    LAST_FRAGMENT,
    MAX_COMMAND,
    PDV_OVERHEAD,
    UNBOUNDED_FRAGMENT,
    DataSink,
    Message,
    SinkFactory,
    fragments,
    p_data_tf,
    parse_command,
    pdv,
)

LOG = logging.getLogger("pacskit.association")
MAX_IN_MEMORY = 16 << 20
IN_MEMORY_COST = 2  # a dataset kept in memory: its bytes, then the Dataset decoded from them


class ProtocolViolation(Exception):
    """The peer broke PS3.8 9.3.5 / PS3.7 Annex E; the message says how."""


class MessageAssembler:
    """Presentation data values queued from P-DATA-TF PDUs, assembled into messages.

    A dataset kept in memory is counted twice (:data:`IN_MEMORY_COST`) against
    ``budget`` until :meth:`done` is called for its message; one that does not fit is
    dropped as it arrives and its message marked ``over_budget``.

    Attributes:
        contexts: the accepted presentation context IDs.
        max_data: the most bytes of a dataset kept in memory when no sink takes it.
    """

    def __init__(self, label: str, budget: MemoryBudget = UNLIMITED) -> None:
        self.label = label
        self.budget = budget
        self.contexts: Container[int] = ()
        self.max_data = MAX_IN_MEMORY
        self.held = 0
        self._pdvs: deque[tuple[int, int, memoryview]] = deque()
        self._start()

    def _start(self) -> None:
        self._command = bytearray()
        self._data = bytearray()
        self._size = self._reserved = 0
        self._over_budget = False
        self._parsed: dict[int, bytes] | None = None
        self._target: DataSink | None = None
        self._context: int | None = None

    @property
    def pending(self) -> bool:
        """Whether values are queued that no message has taken yet."""
        return bool(self._pdvs)

    def feed(self, pdu: bytearray) -> None:
        """Queue the values of one P-DATA-TF PDU (header included).

        Raises:
            ProtocolViolation: a malformed PDV, or one on a context not accepted.
        """
        view = memoryview(pdu)
        end = len(pdu)
        pos = 6
        while pos < end:
            if pos + PDV_OVERHEAD > end:
                raise ProtocolViolation("a P-DATA-TF ends inside a PDV item header")
            length = struct.unpack_from(">I", pdu, pos)[0]
            if length < 2 or pos + 4 + length > end:
                raise ProtocolViolation("a PDV item runs past the end of its P-DATA-TF")
            context_id = pdu[pos + 4]
            if context_id not in self.contexts:
                raise ProtocolViolation(f"a PDV on presentation context {context_id}, which was not accepted")
            self._pdvs.append((context_id, pdu[pos + 5], view[pos + 6:pos + 4 + length]))
            pos += 4 + length
        if pos == 6:
            raise ProtocolViolation("a P-DATA-TF without any PDV")

    def next_message(self, sink: SinkFactory | None = None) -> Message | None:
        """The next whole message from the queued values, or None until more are fed.

        ``sink(context_id, command)``, called once a command that announces a dataset is
        read, may return a :class:`DataSink` that takes the dataset's fragments instead
        of memory.

        Raises:
            ProtocolViolation: a dataset on another context than its command, a command
                set of over 64 KiB, more than :attr:`max_data` bytes to keep in memory.
        """
        while self._pdvs:
            context_id, control, value = self._pdvs.popleft()
            if self._context is None:
                self._context = context_id
            elif context_id != self._context:
                raise ProtocolViolation(f"a message's fragments on presentation contexts "
                                        f"{self._context} and {context_id}")
            if control & COMMAND:
                if self._parsed is not None:
                    raise ProtocolViolation("a command fragment inside a dataset")
                self._command += value
                if len(self._command) > MAX_COMMAND:
                    raise ProtocolViolation(f"a command set of over {MAX_COMMAND} bytes")
                if control & LAST_FRAGMENT:
                    parsed = parse_command(bytes(self._command))
                    if parsed.get(COMMAND_DATA_SET_TYPE, b"\x01\x01")[:2] == b"\x01\x01":
                        self._start()
                        return Message(context_id, parsed, None)
                    self._parsed = parsed
                    self._target = sink(context_id, parsed) if sink is not None else None
                continue
            if self._parsed is None:
                raise ProtocolViolation("a dataset fragment before its command")
            self._dataset_fragment(value)
            if control & LAST_FRAGMENT:
                message = Message(context_id, self._parsed,
                                  None if self._target is not None or self._over_budget else self._data,
                                  self._target, charge=self._reserved, over_budget=self._over_budget)
                self.held += self._reserved
                self._start()
                return message
        return None

    def _dataset_fragment(self, value: memoryview) -> None:
        if self._target is not None:
            self._target.write(value)
            return
        self._size += len(value)
        if self._size > self.max_data:
            raise ProtocolViolation(f"a dataset of over {self.max_data} bytes")
        if self._over_budget:
            return
        if self.budget.reserve(IN_MEMORY_COST * len(value)):
            self._reserved += IN_MEMORY_COST * len(value)
            self._data += value
            return
        self._over_budget = True
        self.budget.release(self._reserved)
        self._reserved = 0
        self._data = bytearray()
        LOG.warning("%s: a dataset past %d bytes would take the memory of all associations "
                    "over %d MiB: dropped, its request will be refused", self.label, self._size,
                    self.budget.limit >> 20)

    def abandon(self) -> None:
        """Drop the message being assembled (its sink discarded, its memory given back)
        and every queued value."""
        self.budget.release(self._reserved)
        if self._target is not None:
            self._target.discard()
        self._pdvs.clear()
        self._start()

    def clear(self) -> None:
        """Drop the queued values (data that arrived while releasing)."""
        self._pdvs.clear()

    def done(self, message: Message) -> None:
        """The association is done with ``message``: what its dataset held of the memory
        budget is given back."""
        charge = min(message.charge, self.held)
        message.charge = 0
        if charge:
            self.budget.release(charge)
            self.held -= charge

    def release_all(self) -> None:
        """Give back everything messages still hold (the connection is closed)."""
        self.budget.release(self.held)
        self.held = 0


def message_pdus(context_id: int, command: bytes, data: bytes | BinaryIO | None,
                 peer_max: int) -> Iterator[bytes]:
    """The P-DATA-TF PDUs of one message (PS3.8 9.3.5, Annex E): the command set, then
    the dataset (bytes, or a file positioned at it, read fragment by fragment), each PDU
    at most ``peer_max`` long (0: unbounded). The command shares the first PDU with the
    first dataset fragment when both fit."""
    fragment = (peer_max or UNBOUNDED_FRAGMENT) - PDV_OVERHEAD
    items = [pdv(context_id, COMMAND | LAST_FRAGMENT, command)]
    size = len(items[0])
    if data is not None:
        for chunk, last in fragments(data, fragment):
            item = pdv(context_id, LAST_FRAGMENT if last else 0x00, chunk)
            if size + len(item) > fragment + PDV_OVERHEAD:
                yield p_data_tf(items)
                items, size = [], 0
            items.append(item)
            size += len(item)
    yield p_data_tf(items)
