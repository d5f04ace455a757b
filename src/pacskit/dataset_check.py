"""Whether an encoded dataset is well formed (PS3.5 7.1, 7.5), found without decoding it
and without recursion: every element, item and fragment lies within the stream and
within the sequence or item that holds it, every undefined length has its delimiter,
and sequences nest at most :data:`~pacskit.encoded.MAX_NESTING` levels deep.

The archive checks each instance with it before storing it (docs/hostile-data.md): a
value length larger than the stream, or sequences nested a thousand deep, would
otherwise be stored as received and fail whoever reads them later.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydicom.datadict import dictionary_VR

from pacskit.encoded import (
    IMPLICIT_LITTLE,
    ITEM,
    ITEM_DELIMITATION,
    LONG_VRS,
    MAX_NESTING,
    PIXEL_DATA,
    SEQUENCE_DELIMITATION,
    UNDEFINED,
    Encoding,
)

if TYPE_CHECKING:
    import mmap


@dataclass
class _Level:
    """A dataset (the top one, or an item's) or the items of a sequence being walked:
    where it ends (None: at its delimiter), the furthest its contents may reach, how
    they are encoded, and whether its items are pixel data fragments, not datasets."""

    items: bool
    end: int | None
    limit: int
    encoding: Encoding
    fragments: bool = False


def check_dataset(data: bytes | bytearray | memoryview | mmap.mmap, offset: int, encoding: Encoding) -> None:
    """Walk the dataset from ``offset`` to the end of ``data`` (a ``bytes``-like object
    or a memory map: values are stepped over, never copied).

    Raises:
        ValueError: it is malformed; the reason names the element or item, no value.
    """
    size = len(data)
    levels = [_Level(items=False, end=size, limit=size, encoding=encoding)]
    pos = offset
    sequences = 0
    while levels:
        level = levels[-1]
        if level.end is not None and pos >= level.end:
            if pos > level.end:
                raise ValueError(f"an element runs past the end of its container at byte {pos}")
            levels.pop()
            sequences -= level.items
            continue
        if pos + 8 > level.limit:
            raise ValueError(f"truncated at byte {pos}")
        order = "<" if level.encoding.little else ">"
        group, number = struct.unpack_from(order + "HH", data, pos)
        tag = (group << 16) | number
        if level.items:
            length = struct.unpack_from(order + "I", data, pos + 4)[0]
            pos += 8
            if tag == SEQUENCE_DELIMITATION and level.end is None:
                levels.pop()
                sequences -= 1
            elif tag != ITEM:
                raise ValueError(f"({group:04X},{number:04X}) where a sequence item should be")
            elif length == UNDEFINED:
                if level.fragments:
                    raise ValueError("a pixel data fragment of undefined length")
                levels.append(_Level(items=False, end=None, limit=level.limit, encoding=level.encoding))
            elif pos + length > level.limit:
                raise ValueError(f"an item runs past the end of its sequence at byte {pos - 8}")
            elif level.fragments:
                pos += length
            else:
                levels.append(_Level(items=False, end=pos + length, limit=pos + length, encoding=level.encoding))
            continue
        if tag == ITEM_DELIMITATION and level.end is None:
            levels.pop()
            pos += 8
            continue
        vr, length, start = _element_header(data, pos, level)
        if length == UNDEFINED:
            sequences += 1
            nested = IMPLICIT_LITTLE if vr == "UN" else level.encoding
            levels.append(_Level(items=True, end=None, limit=level.limit, encoding=nested,
                                 fragments=tag == PIXEL_DATA and len(levels) == 1))
        elif start + length > level.limit:
            raise ValueError(f"element ({group:04X},{number:04X}) runs past the end of the data")
        elif length and _is_sequence(tag, vr):
            sequences += 1
            levels.append(_Level(items=True, end=start + length, limit=start + length, encoding=level.encoding))
        else:
            start += length
        if sequences > MAX_NESTING:
            raise ValueError(f"sequences nested more than {MAX_NESTING} levels deep")
        pos = start


def _element_header(data: bytes | bytearray | memoryview | mmap.mmap, pos: int, level: _Level) -> tuple[str | None, int, int]:
    """The VR (None when implicit), value length and value offset of the element at ``pos``."""
    order = "<" if level.encoding.little else ">"
    if not level.encoding.explicit:
        return None, struct.unpack_from(order + "I", data, pos + 4)[0], pos + 8
    raw_vr = bytes(data[pos + 4:pos + 6])
    if raw_vr in LONG_VRS:
        if pos + 12 > level.limit:
            raise ValueError(f"truncated at byte {pos}")
        return raw_vr.decode("latin-1"), struct.unpack_from(order + "I", data, pos + 8)[0], pos + 12
    return raw_vr.decode("latin-1"), struct.unpack_from(order + "H", data, pos + 6)[0], pos + 8


def _is_sequence(tag: int, vr: str | None) -> bool:
    if vr is not None:
        return vr == "SQ"
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False
