"""DIMSE messages as presentation data values (PS3.7 Section 9, PS3.8 9.3.5 and Annex E):
the pieces :class:`~pacskit.net.association.Association` sends and assembles.

A message is a command set (group 0000, always Implicit VR Little Endian) and an
optional dataset, each split into PDV fragments with a message control header (command
or dataset, last fragment or not) and carried in P-DATA-TF PDUs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

P_DATA_TF = 0x04
PDV_OVERHEAD = 6  # item length (4), presentation context ID (1), message control header (1)
UNBOUNDED_FRAGMENT = 1 << 20
MAX_COMMAND = 64 << 10
LAST_FRAGMENT = 0x02
COMMAND = 0x01


Fragment = bytes | bytearray | memoryview


class DataSink(Protocol):
    """Where a dataset goes as it arrives, fragment by fragment. A fragment may be a view
    into the PDU it came in, which stays valid for as long as the view is kept."""

    def write(self, data: Fragment) -> None: ...

    def discard(self) -> None: ...


SinkFactory = Callable[[int, dict[int, bytes]], "DataSink | None"]


@dataclass
class Message:
    """A received DIMSE message: its command elements (raw values) and dataset — bytes,
    or the :class:`DataSink` that took them.

    ``charge`` is what its in-memory dataset holds of the acceptor's memory budget until
    the association is done with it; ``over_budget`` says the dataset was dropped as it
    arrived because the budget was used up (the request is then refused).
    """

    context_id: int
    command: dict[int, bytes]
    data: bytes | bytearray | None
    sink: DataSink | None = None
    charge: int = 0
    over_budget: bool = False

    def us(self, element: int) -> int | None:
        """An US command element (group 0000) as an int."""
        raw = self.command.get(element)
        return struct.unpack("<H", raw[:2])[0] if raw and len(raw) >= 2 else None

    def tags(self, element: int) -> list[int]:
        """An AT command element (Attribute Identifier List, Offending Element) as tags."""
        raw = self.command.get(element, b"")
        return [(group << 16) | number for group, number in struct.iter_unpack("<HH", raw[:len(raw) // 4 * 4])]

    def text(self, element: int) -> str:
        """A text or UI command element, without padding."""
        return self.command.get(element, b"").rstrip(b"\0 ").decode("ascii", "replace")


def pdv(context_id: int, control: int, value: bytes) -> bytes:
    """A presentation data value item (PS3.8 9.3.5.1, Annex E)."""
    return struct.pack(">IBB", len(value) + 2, context_id, control) + value


def p_data_tf(items: list[bytes]) -> bytes:
    """A P-DATA-TF PDU carrying ``items`` (PS3.8 9.3.5)."""
    body = b"".join(items)
    return struct.pack(">BBI", P_DATA_TF, 0, len(body)) + body


def fragments(data: bytes | BinaryIO, size: int) -> Iterator[tuple[bytes, bool]]:
    """``data`` in pieces of at most ``size`` bytes, each with whether it is the last; an
    empty dataset is one empty piece (the message still needs its last fragment)."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), size):
            yield bytes(view[start:start + size]), start + size >= len(view)
        if not view:
            yield b"", True
        return
    chunk = data.read(size)
    if not chunk:
        yield b"", True
    while chunk:
        following = data.read(size)
        yield chunk, not following
        chunk = following


def parse_command(raw: bytes) -> dict[int, bytes]:
    """The elements of a command set (group 0000, Implicit VR Little Endian) by element
    number, values raw."""
    elements: dict[int, bytes] = {}
    pos = 0
    while pos + 8 <= len(raw):
        group, element, length = struct.unpack_from("<HHI", raw, pos)
        if group != 0x0000 or pos + 8 + length > len(raw):
            break
        elements[element] = raw[pos + 8:pos + 8 + length]
        pos += 8 + length
    return elements
