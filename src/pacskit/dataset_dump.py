"""Datasets and command sets as text, one element a line — ``(0008,0052) CS [STUDY]
# QueryRetrieveLevel``, as DCMTK's ``-d`` shows them — with every person name withheld.

Withheld, shown as ``(withheld)``: any
element of VR PN, and any element whose tag the dictionary gives VR PN or that is a
patient name (:data:`pacskit.privacy.PATIENT_NAME_TAGS`), whatever the VR it came with
(UN, IS, UI...). The value of a withheld element is never decoded, only skipped. A UN
element that holds a sequence (PS3.5 6.2.2) is read as one (:mod:`pacskit.unknown_vr`)
and its items shown the same way; any other UN, any private element read in Implicit VR
(but its Private Creator) and any value of a binary VR, is shown by its length only.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from io import BytesIO
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import UID

from pacskit.deflate import inflate
from pacskit.dimse_text import command_name, error_name, printable, status_text
from pacskit.privacy import PATIENT_NAME_TAGS
from pacskit.transfer_syntax import DEFLATED, EXPLICIT_VR_BIG_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN
from pacskit.unknown_vr import read_items, unknown_value

DUMP_LIMIT = 64 << 10
"""Datasets larger than this (an instance being stored) are not dumped."""
WITHHELD = "(withheld)"
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW"})
INDENT = "  "
_VALUE_LIMIT = 80
_COMMAND_FIELD = 0x0100
_STATUS = 0x0900
_UNPACK = {"US": "H", "UL": "I", "SS": "h", "SL": "i", "FL": "f", "FD": "d"}


def dump_dataset(data: bytes | bytearray | memoryview, transfer_syntax: str | None,
                 *, limit: int = DUMP_LIMIT) -> list[str]:
    """The lines that show the dataset ``data`` (the bytes of a DIMSE message's data set,
    encoded in ``transfer_syntax``): a heading, then one line per element. Never raises:
    a dataset that cannot be decoded is one line saying so, with the exception's type
    (its text may quote a value)."""
    size = memoryview(data).nbytes
    if size > limit:
        return [f"dataset: {size} bytes"]
    if not transfer_syntax:
        return [f"dataset: {size} bytes (transfer syntax not known)"]
    try:
        dataset = _decode(bytes(data), transfer_syntax, limit)
        lines = list(_elements(dataset, 1))
    except Exception as exc:  # noqa: BLE001 - a log line must not fail on a peer's bytes
        return [f"dataset: {size} bytes (cannot be decoded: {error_name(exc)})"]
    return [f"dataset: {size} bytes, {printable(UID(transfer_syntax).name, 100)}", *lines]


def dump_command(command: Mapping[int, bytes]) -> list[str]:
    """The lines that show a command set (group 0000, Implicit VR Little Endian, raw
    values by element number, as :func:`pacskit.net.wire.parse_command` returns it)."""
    field_raw = command.get(_COMMAND_FIELD)
    field = struct.unpack_from("<H", field_raw)[0] if field_raw and len(field_raw) >= 2 else None
    lines = ["command set:"]
    for element in sorted(command):
        tag = Tag(0x0000, element)
        raw = bytes(command[element])
        vr = _dictionary_vr(tag) or "UN"
        if element == _COMMAND_FIELD and field is not None:
            shown = f"[0x{field:04X}] {command_name(field)}"
        elif element == _STATUS and len(raw) >= 2:
            status = struct.unpack_from("<H", raw)[0]
            shown = f"[0x{status:04X}] " + status_text(status, field).replace(f" 0x{status:04X}", "", 1)
        else:
            shown = _command_value(vr, raw)
        lines.append(_line(1, tag, vr.split(" or ")[0], shown))
    return lines




def _decode(data: bytes, transfer_syntax: str, limit: int) -> Dataset:
    """The dataset; a deflated one is inflated to at most ``limit`` bytes, as much as a
    plain one may have to be shown (pynetdicom, imported on the first dataset shown)."""
    from pynetdicom.dsutils import decode

    if transfer_syntax in DEFLATED:
        return decode(BytesIO(inflate(data, limit)), False, True)
    return decode(BytesIO(data), transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN,
                  transfer_syntax != EXPLICIT_VR_BIG_ENDIAN)


def _elements(dataset: Dataset, depth: int) -> Iterable[str]:
    for tag in list(dataset.keys()):
        raw = dataset.get_item(tag)
        vr = _vr(raw)
        if _withheld(raw.tag, vr):
            yield _line(depth, raw.tag, vr, WITHHELD)
        elif vr == "SQ":
            yield from _sequence(depth, raw.tag, "SQ", dataset[tag].value)
        elif vr == "UN":
            yield from _unknown(dataset, raw, depth)
        elif vr in BINARY_VRS:
            yield _line(depth, raw.tag, vr, _length(raw))
        else:
            yield _line(depth, raw.tag, vr, _converted(dataset, raw.tag))


def _unknown(dataset: Dataset, raw: DataElement | RawDataElement, depth: int) -> Iterable[str]:
    value = unknown_value(raw)
    if value is not None:
        parsed = read_items(value)
        if parsed is None:
            yield _line(depth, raw.tag, "UN", f"({len(value)} bytes, not a readable sequence)")
        else:
            yield from _sequence(depth, raw.tag, "UN", parsed[0])
    elif raw.tag.is_private or _dictionary_vr(raw.tag) is None:
        yield _line(depth, raw.tag, "UN", _length(raw))
    else:
        element = dataset[raw.tag]
        if element.VR == "SQ":
            yield from _sequence(depth, raw.tag, "UN", element.value)
        elif element.VR in BINARY_VRS or element.VR == "UN":
            yield _line(depth, raw.tag, "UN", _length(raw))
        else:
            yield _line(depth, raw.tag, "UN", _converted(dataset, raw.tag))


def _sequence(depth: int, tag: Any, vr: str, items: Sequence) -> Iterable[str]:
    count = len(items)
    yield _line(depth, tag, vr, f"({count} item{'' if count == 1 else 's'})")
    for number, item in enumerate(items, 1):
        yield f"{INDENT * (depth + 1)}item {number}"
        yield from _elements(item, depth + 2)


def _converted(dataset: Dataset, tag: Any) -> str:
    try:
        return _shown(dataset[tag].value)
    except Exception as exc:  # noqa: BLE001 - one bad value does not hide the others
        return f"(cannot be decoded: {error_name(exc)})"


def _withheld(tag: Any, vr: str) -> bool:
    if vr == "PN" or tag in PATIENT_NAME_TAGS:
        return True
    if tag.is_private:
        return False
    return "PN" in (_dictionary_vr(tag) or "")


def _vr(raw: DataElement | RawDataElement) -> str:
    if raw.VR is not None:
        return str(raw.VR)
    if raw.tag.is_private_creator:
        return "LO"
    if raw.tag.is_private:
        return "UN"
    vr = _dictionary_vr(raw.tag) or "UN"
    parts = vr.split(" or ")
    return "OW" if any(p in BINARY_VRS for p in parts) else parts[0]


def _dictionary_vr(tag: Any) -> str | None:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _length(raw: DataElement | RawDataElement) -> str:
    value = raw.value
    size = len(value) if isinstance(value, bytes | bytearray) else raw.length if isinstance(raw, RawDataElement) else 0
    return f"({size} bytes)"


def _shown(value: Any) -> str:
    if value is None or value == "" or (isinstance(value, MultiValue | list) and not value):
        return "(no value)"
    if isinstance(value, bytes | bytearray):
        return f"({len(value)} bytes)"
    if isinstance(value, MultiValue | list | tuple):
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    return f"[{printable(text, _VALUE_LIMIT)}]"


def _command_value(vr: str, raw: bytes) -> str:
    code = _UNPACK.get(vr)
    if code is not None:
        count = len(raw) // struct.calcsize(code)
        values = struct.unpack_from(f"<{count}{code}", raw) if count else ()
        return _shown([str(v) for v in values])
    if vr == "AT" and len(raw) >= 4:
        pairs = struct.iter_unpack("<HH", raw[: len(raw) // 4 * 4])
        return _shown([f"({g:04X},{e:04X})" for g, e in pairs])
    if vr in BINARY_VRS or vr == "UN":
        return f"({len(raw)} bytes)"
    return _shown(raw.rstrip(b"\0 ").decode("ascii", "replace"))


def _line(depth: int, tag: Any, vr: str, shown: str) -> str:
    tag = Tag(tag)
    keyword = keyword_for_tag(tag) if not tag.is_private else ""
    line = f"{INDENT * depth}({tag.group:04X},{tag.element:04X}) {printable(vr, 2)} {shown}"
    return f"{line}  # {keyword}" if keyword else line
