"""Encoded datasets, read and patched without decoding them (PS3.5 7).

Retrieved instances are written as they arrive; decoding one with pydicom to find its
layout attributes and blank its patient names costs more than receiving it. Here the
top-level elements of an encoded dataset are indexed in one pass over their headers —
sequences and encapsulated pixel data are stepped over, never parsed into values — and
patient names are blanked by rewriting their element headers in the bytes.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, TypeAlias

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from pacskit.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacskit.transfer_syntax import DEFLATED, EXPLICIT_VR_BIG_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN

if TYPE_CHECKING:
    import mmap

    Readable: TypeAlias = bytes | mmap.mmap
    """A dataset's bytes: ``bytes``, or a read-only memory map of its file (both slice to
    ``bytes``)."""

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIMITATION = 0xFFFEE00D
SEQUENCE_DELIMITATION = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
WHOLE_SEARCH_LIMIT = 64 << 10
MAX_NESTING = 128
"""The deepest undefined-length sequences are followed: deeper is malformed here."""
SPECIFIC_CHARACTER_SET = 0x00080005
ASCII_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH",
                            "ST", "TM", "UC", "UI", "UR", "UT"})
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                      b"UR", b"UT", b"UV"})


@dataclass(frozen=True)
class Encoding:
    """How a dataset is encoded: from its transfer syntax."""

    explicit: bool
    little: bool

    @classmethod
    def of(cls, transfer_syntax: str) -> Encoding:
        """The encoding of ``transfer_syntax`` (any syntax not named here is Explicit VR
        Little Endian, as every compressed one is).

        Raises:
            ValueError: a deflated syntax, whose bytes must be inflated first.
        """
        if transfer_syntax in DEFLATED:
            raise ValueError("a deflated dataset cannot be read without inflating it")
        return cls(explicit=transfer_syntax != IMPLICIT_VR_LITTLE_ENDIAN,
                   little=transfer_syntax != EXPLICIT_VR_BIG_ENDIAN)


_encoding_of = functools.cache(Encoding.of)

META_ENCODING = Encoding(explicit=True, little=True)
META_START = 132


class Element(NamedTuple):
    """Where one element sits in the bytes. ``length`` may be :data:`UNDEFINED`."""

    tag: int
    vr: str | None
    header: int
    start: int
    length: int
    end: int


def index_dataset(data: bytes, pos: int, encoding: Encoding) -> dict[int, Element]:
    """The top-level elements of the dataset from ``pos`` to the end of ``data``.

    Raises:
        ValueError: the bytes are not a well-formed dataset (truncated, a bad item).
    """
    elements: dict[int, Element] = {}
    while pos < len(data):
        element = _read_element(data, pos, encoding)
        elements[element.tag] = element
        pos = element.end
    return elements


def elements_up_to(data: Readable, pos: int, encoding: Encoding, last_tag: int) -> dict[int, Element]:
    """The top-level elements from ``pos`` up to ``last_tag``.

    Raises:
        ValueError: ``data`` ends, or is malformed, before an element past ``last_tag``
            (or the end of the data) is reached.
    """
    elements: dict[int, Element] = {}
    while pos < len(data):
        element = _read_element(data, pos, encoding)
        if element.tag > last_tag:
            break
        elements[element.tag] = element
        pos = element.end
    return elements


def header_elements(data: bytes, pos: int, encoding: Encoding, last_tag: int,
                    wanted: frozenset[int]) -> dict[int, Element]:
    """The elements of :func:`elements_up_to`, read alike (and refused alike), of which
    only those in ``wanted`` and the group lengths are kept.

    Raises:
        ValueError: as :func:`elements_up_to`.
    """
    if not encoding.little:
        return {tag: e for tag, e in elements_up_to(data, pos, encoding, last_tag).items()
                if tag in wanted or not tag & 0xFFFF}
    explicit = encoding.explicit
    unpack = (_EXPLICIT_LE if explicit else _IMPLICIT_LE).unpack_from
    size = len(data)
    elements: dict[int, Element] = {}
    while pos < size:
        if pos + 8 > size:
            raise ValueError(f"truncated element header at byte {pos}")
        if explicit:
            group, number, raw_vr, length = unpack(data, pos)
            simple = group != 0xFFFE and raw_vr not in LONG_VRS
        else:
            group, number, length = unpack(data, pos)
            raw_vr, simple = None, length != UNDEFINED
        if simple:
            tag, end = (group << 16) | number, pos + 8 + length
            if end > size:
                raise ValueError(f"element ({group:04X},{number:04X}) runs past the end of the data")
            if tag > last_tag:
                break
            if tag in wanted or not number:
                vr = raw_vr.decode("ascii", "replace") if raw_vr is not None else None
                elements[tag] = Element(tag, vr, pos, pos + 8, length, end)
        else:
            element = _read_element(data, pos, encoding)
            tag, end = element.tag, element.end
            if tag > last_tag:
                break
            if tag in wanted or not tag & 0xFFFF:
                elements[tag] = element
        pos = end
    return elements


def parse_file_meta(data: bytes, *, complete: bool = True) -> tuple[dict[int, str], int | None]:
    """The file meta information of a Part 10 byte string (PS3.10 7.1: group 0002,
    Explicit VR Little Endian, after the preamble and ``DICM``): its UI values by element
    number, and the dataset's offset — None if ``data`` ends inside the group (or may:
    it is not the ``complete`` file)."""
    values: dict[int, str] = {}
    pos = META_START
    while pos < len(data):
        if pos + 2 <= len(data) and data[pos:pos + 2] != b"\x02\x00":
            return values, pos
        try:
            element = _read_element(data, pos, META_ENCODING)
        except ValueError:
            return values, None
        if element.vr == "UI":
            values[element.tag & 0xFFFF] = text_of(data[element.start:element.end])
        pos = element.end
    return values, (pos if complete else None)


def dataset_encoding(data: bytes) -> tuple[int, Encoding] | None:
    """Where the dataset of a Part 10 byte string starts, and how it is encoded; None if
    the file meta information is missing or names a syntax read only by pydicom."""
    if data[128:132] != b"DICM":
        return None
    found = plain_file_meta(data)
    if found is None:
        meta, offset = parse_file_meta(data)
        if offset is None:
            return None
        found = offset, meta.get(0x0010)
    offset, syntax = found
    if syntax is None:
        return None
    try:
        return offset, _encoding_of(syntax)
    except ValueError:
        return None


def plain_file_meta(data: bytes) -> tuple[int, str | None] | None:
    """The dataset's offset and the Transfer Syntax UID, as :func:`parse_file_meta` reads
    them, when every element of the group has a defined length and the data goes on past
    it; None otherwise (that function is then the one to ask)."""
    pos, size, syntax = META_START, len(data), None
    while pos + 12 <= size:
        group, number, raw_vr, length = _EXPLICIT_LE.unpack_from(data, pos)
        if group != 0x0002:
            return pos, syntax
        start = pos + 8
        if raw_vr in LONG_VRS:
            length, start = _UL_LE.unpack_from(data, start)[0], start + 4
        end = start + length
        if length == UNDEFINED or end > size:
            return None
        if number == 0x0010 and raw_vr == b"UI":
            syntax = text_of(data[start:end])
        pos = end
    return None


def file_meta(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str,
              source_ae_title: str | None = None) -> bytes:
    """The preamble, ``DICM`` and file meta information (PS3.10 7.1) of a Part 10 file
    holding an instance received over the network in ``transfer_syntax``."""
    body = b"".join((_VERSION_ELEMENT, _meta_element(0x0002, b"UI", _padded(sop_class_uid, b"\0")),
                     _meta_element(0x0003, b"UI", _padded(sop_instance_uid, b"\0")),
                     _meta_element(0x0010, b"UI", _padded(transfer_syntax, b"\0")),
                     _IMPLEMENTATION_ELEMENTS, _source_element(source_ae_title)))
    return b"".join((_PREAMBLE, _meta_element(0x0000, b"UL", struct.pack("<I", len(body))), body))


@functools.lru_cache(maxsize=64)
def _source_element(source_ae_title: str | None) -> bytes:
    return _meta_element(0x0016, b"AE", _padded(source_ae_title, b" ")) if source_ae_title else b""


def _meta_element(number: int, vr: bytes, value: bytes) -> bytes:
    if vr in LONG_VRS:
        return struct.pack("<HH", 0x0002, number) + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return struct.pack("<HH", 0x0002, number) + vr + struct.pack("<H", len(value)) + value


def _padded(value: str, pad: bytes) -> bytes:
    raw = value.encode("ascii")
    return raw + pad if len(raw) % 2 else raw


_PREAMBLE = b"\0" * 128 + b"DICM"
_VERSION_ELEMENT = _meta_element(0x0001, b"OB", b"\x00\x01")
_IMPLEMENTATION_ELEMENTS = (_meta_element(0x0012, b"UI", _padded(IMPLEMENTATION_CLASS_UID, b"\0"))
                            + _meta_element(0x0013, b"SH", _padded(IMPLEMENTATION_VERSION_NAME, b" ")))
_keyword_tag = functools.cache(tag_for_keyword)


def text_of(raw: bytes) -> str:
    """A UI or ASCII text value without its padding."""
    return raw.rstrip(b"\0 ").decode("ascii", "replace")


def blank_names(data: bytes, offset: int, elements: dict[int, Element], encoding: Encoding,
                tags: Iterable[int]) -> bytes | None:
    """``data`` with every top-level element of ``tags`` (the patient names) emptied, in
    one byte string: :func:`blanked_parts` joined."""
    parts = blanked_parts(data, offset, elements, encoding, tags)
    if parts is None:
        return None
    return data if len(parts) == 1 else b"".join(parts)


def blanked_parts(data: bytes, offset: int, elements: dict[int, Element], encoding: Encoding,
                  tags: Iterable[int]) -> list[bytes | memoryview] | None:
    """``data`` with every top-level element of ``tags`` (the patient names) emptied
    (PS3.5 7.1: a zero-length value), as the pieces to write one after the other — views
    into ``data`` and the emptied headers, so that a large instance is not copied;
    ``[data]`` if none has a value; None if one of them may also hide in a sequence or a
    UN value, or a group length would go stale — then the dataset has to be decoded to
    be blanked."""
    tags = frozenset(tags)
    top = [elements[tag] for tag in tags if tag in elements]
    regions = _outside_pixel_data(data, offset, elements, encoding)
    if _more_than(data, regions, {tag: int(tag in elements) for tag in tags}, encoding.little):
        return None
    filled = sorted((e for e in top if e.length), key=lambda e: e.header)
    if not filled:
        return [data]
    if any(((e.tag >> 16) << 16) in elements for e in filled):
        return None
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    cursor = 0
    for element in filled:
        parts.append(view[cursor:element.header])
        parts.append(_empty_header(element, encoding))
        cursor = element.end
    parts.append(view[cursor:])
    return parts


def _more_than(data: bytes, regions: list[tuple[int, int]], allowed: dict[int, int], little: bool) -> bool:
    """Whether a tag of ``allowed`` is written more often in the ``regions`` of ``data``
    than it may be, counting as ``bytes.count`` does (occurrences that do not overlap)."""
    search = _tag_search(frozenset(allowed), little)
    if search is None:
        return any(sum(data.count(pattern, start, end) for pattern in _tag_patterns(tag, little)
                       for start, end in regions) > limit for tag, limit in allowed.items())
    regex, tag_of = search
    counts = dict.fromkeys(allowed, 0)
    for start, end in regions:
        last: dict[bytes, int] = {}
        for match in regex.finditer(data, start, end):
            at = match.start()
            pattern = data[at:at + 4]
            if at < last.get(pattern, -4) + 4:
                continue
            last[pattern] = at
            tag = tag_of[pattern]
            counts[tag] += 1
            if counts[tag] > allowed[tag]:
                return True
    return False


@functools.cache
def _tag_search(tags: frozenset[int], little: bool) -> tuple[re.Pattern[bytes], dict[bytes, int]] | None:
    """One regular expression that finds every place any of ``tags`` is written — its
    two-byte prefix, shared by all of them, is matched and the rest looked ahead at, so no
    occurrence is stepped over — and the tag of each pattern; None when the tags'
    patterns have no such prefix (little endian names of one group have)."""
    if not little or not tags:
        return None
    tag_of = {_tag_patterns(tag, little)[0]: tag for tag in tags}
    prefixes = {pattern[:2] for pattern in tag_of}
    prefix = next(iter(prefixes))
    if len(prefixes) != 1 or prefix[0] == prefix[1]:
        return None
    rests = b"|".join(re.escape(pattern[2:]) for pattern in tag_of)
    return re.compile(re.escape(prefix) + b"(?=" + rests + b")"), tag_of


def tag_patterns(tag: int, encoding: Encoding) -> tuple[bytes, ...]:
    """The bytes ``tag`` is written as in a dataset of ``encoding``, and for a big endian
    one also in little endian: the order of the items of a UN value (PS3.5 6.2.2)."""
    return _tag_patterns(tag, encoding.little)


@functools.cache
def _tag_patterns(tag: int, little: bool) -> tuple[bytes, ...]:
    in_little = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    return (in_little,) if little else (struct.pack(">HH", tag >> 16, tag & 0xFFFF), in_little)


IMPLICIT_LITTLE = Encoding(explicit=False, little=True)
EXPLICIT_LITTLE = Encoding(explicit=True, little=True)
ITEM_LITTLE = b"\xfe\xff\x00\xe0"


def sequence_encoding(value: bytes) -> Encoding | None:
    """How ``value`` — the value of a UN element — is encoded, if it is the items of a
    sequence, whole and well formed (PS3.5 7.5): in Implicit VR Little Endian, as PS3.5
    6.2.2 says a UN sequence is, or else in Explicit VR Little Endian, as some writers
    leave it. None if it is neither."""
    if not value.startswith(ITEM_LITTLE):
        return None
    for encoding in (IMPLICIT_LITTLE, EXPLICIT_LITTLE):
        try:
            if _items_end(value, encoding) == len(value):
                return encoding
        except (ValueError, RecursionError):
            continue
    return None


def _items_end(value: bytes, encoding: Encoding) -> int:
    """Where the items that fill ``value`` end; each item's elements are read through."""
    pos = 0
    while pos < len(value):
        if pos + 8 > len(value):
            raise ValueError("truncated item header")
        group, number, length = _IMPLICIT_LE.unpack_from(value, pos)
        if (group << 16) | number != ITEM:
            raise ValueError(f"({group:04X},{number:04X}) where a sequence item should be")
        pos += 8
        if length == UNDEFINED:
            pos = _skip_item_dataset(value, pos, encoding)
        elif pos + length > len(value):
            raise ValueError("a sequence item runs past the end of the value")
        else:
            index_dataset(value[pos:pos + length], 0, encoding)
            pos += length
    return pos


_EXPLICIT_LE, _EXPLICIT_BE = struct.Struct("<HH2sH"), struct.Struct(">HH2sH")
_EXPLICIT_LONG_LE = struct.Struct("<HH2s2xI")
_IMPLICIT_LE, _IMPLICIT_BE = struct.Struct("<HHI"), struct.Struct(">HHI")
_UL_LE, _UL_BE = struct.Struct("<I"), struct.Struct(">I")


class HeaderValues(Mapping[str, Any]):
    """The values of indexed top-level elements by keyword, decoded on access: ASCII
    text directly, anything else (other character sets, binary VRs) by pydicom."""

    def __init__(self, data: bytes, elements: dict[int, Element], encoding: Encoding) -> None:
        self.data = data
        self.elements = elements
        self.encoding = encoding

    def __getitem__(self, keyword: str) -> Any:
        tag = _keyword_tag(keyword)
        element = self.elements.get(tag) if tag is not None else None
        if tag is None or element is None or element.length == UNDEFINED:
            raise KeyError(keyword)
        raw = self.data[element.start:element.end]
        vr = element.vr or dictionary_VR(tag)
        if vr in ASCII_TEXT_VRS and raw.isascii() and b"\x1b" not in raw:
            text = raw.decode("ascii").strip(" \0")
            return text.split("\\") if "\\" in text else text
        return self._by_pydicom(keyword, element)

    def __iter__(self) -> Iterator[str]:
        return (keyword_for_tag(tag) for tag in self.elements)

    def __len__(self) -> int:
        return len(self.elements)

    def _by_pydicom(self, keyword: str, element: Element) -> Any:
        implicit = not self.encoding.explicit
        raw: dict[BaseTag, DataElement | RawDataElement] = {
            BaseTag(e.tag): RawDataElement(BaseTag(e.tag), e.vr, e.length, self.data[e.start:e.end],
                                           e.start, implicit, self.encoding.little)
            for e in (element, self.elements.get(SPECIFIC_CHARACTER_SET)) if e is not None
        }
        return Dataset(raw).get(keyword)


def header_dataset(data: bytes, offset: int, transfer_syntax: str, tags: frozenset[int]) -> Dataset:
    """The top-level elements ``tags`` of the encoded dataset that starts at ``offset``,
    as a pydicom dataset whose values are decoded on access (with its Specific Character
    Set when it has one). Reading stops past the last of ``tags``: what follows is
    neither parsed nor checked.

    Raises:
        ValueError: the bytes are malformed before that point, or deflated.
    """
    return _header(data, offset, Encoding.of(transfer_syntax), tags)[0]


def header_and_pixel_data_length(data: Readable, offset: int, transfer_syntax: str,
                                 tags: frozenset[int]) -> tuple[Dataset, int | None]:
    """:func:`header_dataset`, and the length field of the top-level Pixel Data element
    (see :func:`pixel_data_length`), found by going on from where the header ends.

    Raises:
        ValueError: the bytes are malformed before the last of ``tags``, or deflated.
    """
    encoding = Encoding.of(transfer_syntax)
    header, end = _header(data, offset, encoding, tags)
    return header, pixel_data_length(data, end, encoding)


def _header(data: Readable, offset: int, encoding: Encoding, tags: frozenset[int]) -> tuple[Dataset, int]:
    """The dataset of :func:`header_dataset`, and where the last element read ends."""
    implicit = not encoding.explicit
    wanted = tags | {SPECIFIC_CHARACTER_SET}
    elements = elements_up_to(data, offset, encoding, max(wanted))
    header = Dataset({
        BaseTag(e.tag): RawDataElement(BaseTag(e.tag), e.vr, e.length, data[e.start:e.end], e.start,
                                       implicit, encoding.little)
        for e in elements.values() if e.tag in wanted and e.length != UNDEFINED
    })
    return header, max((e.end for e in elements.values()), default=offset)


def pixel_data_length(data: Readable, pos: int, encoding: Encoding) -> int | None:
    """The length field of the top-level Pixel Data element at or after the element
    boundary ``pos`` — :data:`UNDEFINED` when its value is encapsulated (PS3.5 A.4) —
    read from the element's header alone; None if ``data`` holds no Pixel Data element
    (or is malformed before it, or ends inside its header)."""
    at = pixel_data_offset(data, pos, encoding)
    if at is None:
        return None
    unpack = (_UL_LE if encoding.little else _UL_BE).unpack_from
    if not encoding.explicit:
        return int(unpack(data, at + 4)[0]) if at + 8 <= len(data) else None
    if data[at + 4:at + 6] in LONG_VRS:
        return int(unpack(data, at + 8)[0]) if at + 12 <= len(data) else None
    if at + 8 > len(data):
        return None
    return int(struct.unpack_from("<H" if encoding.little else ">H", data, at + 6)[0])


def plain_json(element: Any) -> dict[str, Any] | None:
    """The DICOM JSON (PS3.18 F.2) of a still encoded element of plain ASCII text, whole
    numbers (IS) or binary integers (US, UL, SS, SL), written without pydicom's
    conversions; None for anything else (pydicom's answer is then the right one)."""
    if not isinstance(element, RawDataElement) or not isinstance(element.value, bytes):
        return None
    vr = element.VR or dictionary_VR(element.tag)
    raw = element.value
    if vr in _BINARY_INTEGERS:
        size, code = _BINARY_INTEGERS[vr]
        if len(raw) % size:
            return None
        if not raw:
            return {"vr": vr}
        order = "<" if element.is_little_endian else ">"
        return {"vr": vr, "Value": list(struct.unpack(f"{order}{len(raw) // size}{code}", raw))}
    if vr not in _PLAIN_TEXT_VRS or not raw.isascii() or b"\x1b" in raw:
        return None
    text = raw.decode("ascii").rstrip("\0 ")
    if not text:
        return {"vr": vr}
    values = text.split("\\")
    if not all(v and v[0] != " " and v[-1] != " " for v in values):
        return None
    if vr == "IS":
        if not all(_WHOLE_NUMBER.match(v) for v in values):
            return None
        return {"vr": vr, "Value": [int(v) for v in values]}
    return {"vr": vr, "Value": values}


def plain_text(dataset: Dataset, keyword: str) -> str:
    """The single value of a text attribute as ``str()`` of pydicom's value, read without
    its conversions when it is plain ASCII; empty when absent or empty."""
    tag = _tag(keyword)
    element = dataset.get_item(tag)
    if element is None:
        return ""
    plain = plain_json(element)
    if plain is not None and plain["vr"] not in _BINARY_INTEGERS and plain["vr"] != "IS":
        values = plain.get("Value", [""])
        if len(values) == 1:
            return str(values[0])
    value = dataset[tag].value
    return "" if value is None else str(value)


_PLAIN_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "IS", "LO", "SH", "TM", "UI"})
_BINARY_INTEGERS = {"US": (2, "H"), "SS": (2, "h"), "UL": (4, "I"), "SL": (4, "i")}
_WHOLE_NUMBER = re.compile(r"^[+-]?[0-9]{1,9}$")


@functools.cache
def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag


def encode_plain(dataset: Dataset, *, implicit: bool) -> bytes | None:
    """``dataset`` encoded in Little Endian (Implicit or Explicit VR), written directly
    when every element is plain — ASCII text, whole numbers, binary integers, an empty
    sequence — as a query response identifier is; None otherwise (pydicom's writer is
    then the one to use). The bytes are those pydicom would write."""
    out = bytearray()
    for element in dataset:
        value = _plain_value(element.VR, element.value)
        if value is None:
            return None
        tag = element.tag
        if implicit:
            out += _IMPLICIT_LE.pack(tag >> 16, tag & 0xFFFF, len(value))
        elif element.VR.encode("ascii") in LONG_VRS:
            out += _EXPLICIT_LONG_LE.pack(tag >> 16, tag & 0xFFFF, element.VR.encode("ascii"), len(value))
        elif len(value) <= 0xFFFF:
            out += _EXPLICIT_LE.pack(tag >> 16, tag & 0xFFFF, element.VR.encode("ascii"), len(value))
        else:
            return None
        out += value
    return bytes(out)


def _plain_value(vr: str, value: Any) -> bytes | None:
    if vr == "SQ":
        return b"" if not value else None
    if value is None or value == "":
        return b""
    values = value if isinstance(value, (list, tuple, MultiValue)) else [value]
    if vr in _BINARY_INTEGERS:
        code = _BINARY_INTEGERS[vr][1]
        try:
            return struct.pack(f"<{len(values)}{code}", *values)
        except (struct.error, TypeError):
            return None
    if vr == "IS":
        if not all(isinstance(v, int) for v in values):
            return None
        text = "\\".join(getattr(v, "original_string", None) or str(int(v)) for v in values)
    elif vr in _PLAIN_TEXT_VRS or vr == "PN":
        if not all(isinstance(v, str) or vr == "PN" for v in values):
            return None
        text = "\\".join(str(v) for v in values)
    else:
        return None
    if not text.isascii():
        return None
    raw = text.encode("ascii")
    return raw + (b"\0" if vr == "UI" else b" ") if len(raw) % 2 else raw


def element_at(data: bytes, pos: int, encoding: Encoding) -> Element:
    """The element whose header starts at ``pos`` (an undefined length is read through).

    Raises:
        ValueError: truncated or malformed.
    """
    return _read_element(data, pos, encoding)


def _read_element(data: Readable, pos: int, encoding: Encoding, depth: int = 0) -> Element:
    little = encoding.little
    if pos + 8 > len(data):
        raise ValueError(f"truncated element header at byte {pos}")
    vr: str | None = None
    if encoding.explicit and data[pos:pos + 2] != (b"\xfe\xff" if little else b"\xff\xfe"):
        group, number, raw_vr, length = (_EXPLICIT_LE if little else _EXPLICIT_BE).unpack_from(data, pos)
        vr = raw_vr.decode("ascii", "replace")
        start = pos + 8
        if raw_vr in LONG_VRS:
            if pos + 12 > len(data):
                raise ValueError(f"truncated element header at byte {pos}")
            length = (_UL_LE if little else _UL_BE).unpack_from(data, pos + 8)[0]
            start = pos + 12
    else:
        group, number, length = (_IMPLICIT_LE if little else _IMPLICIT_BE).unpack_from(data, pos)
        start = pos + 8
    tag = (group << 16) | number
    if length != UNDEFINED:
        end = start + length
        if end > len(data):
            raise ValueError(f"element ({group:04X},{number:04X}) runs past the end of the data")
    else:
        nested = IMPLICIT_LITTLE if vr == "UN" else encoding
        end = _skip_items(data, start, nested, depth + 1)
    return Element(tag, vr, pos, start, length, end)


def _skip_items(data: Readable, pos: int, encoding: Encoding, depth: int = 1) -> int:
    """The end of an undefined-length sequence or encapsulated pixel data (PS3.5 7.5),
    ``depth`` levels down.

    Raises:
        ValueError: malformed, or nested more than :data:`MAX_NESTING` levels deep.
    """
    if depth > MAX_NESTING:
        raise ValueError(f"sequences nested more than {MAX_NESTING} levels deep")
    order = "<" if encoding.little else ">"
    while True:
        if pos + 8 > len(data):
            raise ValueError("a sequence runs past the end of the data")
        group, number, length = struct.unpack_from(order + "HHI", data, pos)
        tag = (group << 16) | number
        pos += 8
        if tag == SEQUENCE_DELIMITATION:
            return pos
        if tag != ITEM:
            raise ValueError(f"({group:04X},{number:04X}) where a sequence item should be")
        if length == UNDEFINED:
            pos = _skip_item_dataset(data, pos, encoding, depth)
        elif pos + length > len(data):
            raise ValueError("a sequence item runs past the end of the data")
        else:
            pos += length


def _skip_item_dataset(data: Readable, pos: int, encoding: Encoding, depth: int = 1) -> int:
    order = "<" if encoding.little else ">"
    while pos + 8 <= len(data):
        group, number = struct.unpack_from(order + "HH", data, pos)
        if (group << 16) | number == ITEM_DELIMITATION:
            return pos + 8
        pos = _read_element(data, pos, encoding, depth).end
    raise ValueError("a sequence item runs past the end of the data")


def pixel_data_offset(data: Readable, pos: int, encoding: Encoding) -> int | None:
    """Where the top-level Pixel Data element begins in ``data``, which may end inside it
    (the head of a large file); None if it is not there, or what precedes it is malformed."""
    order = "<" if encoding.little else ">"
    try:
        while pos + 4 <= len(data):
            group, number = struct.unpack_from(order + "HH", data, pos)
            tag = (group << 16) | number
            if tag >= PIXEL_DATA:
                return pos if tag == PIXEL_DATA else None
            pos = _read_element(data, pos, encoding).end
    except ValueError:
        return None
    return None


def pixel_data_end(head: bytes, offset: int, encoding: Encoding, source: BinaryIO) -> int | None:
    """Where the Pixel Data element that begins at ``offset`` (read from ``head``, the
    first bytes of ``source``) ends in ``source``; encapsulated pixel data is followed
    item by item through the file. None if the file is malformed there."""
    order = "<" if encoding.little else ">"
    if encoding.explicit:
        if offset + 12 > len(head):
            return None
        length, start = struct.unpack_from(order + "I", head, offset + 8)[0], offset + 12
    else:
        if offset + 8 > len(head):
            return None
        length, start = struct.unpack_from(order + "I", head, offset + 4)[0], offset + 8
    if length != UNDEFINED:
        return int(start + length)
    position = start
    while True:
        source.seek(position)
        item = source.read(8)
        if len(item) < 8:
            return None
        group, number, item_length = struct.unpack(order + "HHI", item)
        tag = (group << 16) | number
        position += 8
        if tag == SEQUENCE_DELIMITATION:
            return position
        if tag != ITEM or item_length == UNDEFINED:
            return None
        position += item_length


def _outside_pixel_data(data: bytes, offset: int, elements: dict[int, Element],
                        encoding: Encoding) -> list[tuple[int, int]]:
    """The parts of a large dataset that are not its Pixel Data value, where a name could
    hide; a small dataset is searched whole."""
    if len(data) - offset <= WHOLE_SEARCH_LIMIT:
        return [(offset, len(data))]
    pos = max((e.end for e in elements.values()), default=offset)
    try:
        while pos < len(data):
            element = _read_element(data, pos, encoding)
            if element.tag == PIXEL_DATA:
                return [(offset, element.start), (element.end, len(data))]
            pos = element.end
    except ValueError:
        pass
    return [(offset, len(data))]


def _empty_header(element: Element, encoding: Encoding) -> bytes:
    order = "<" if encoding.little else ">"
    tag = struct.pack(order + "HH", element.tag >> 16, element.tag & 0xFFFF)
    if not encoding.explicit:
        return tag + struct.pack(order + "I", 0)
    vr = (element.vr or "UN").encode("ascii")
    if vr in LONG_VRS:
        return tag + vr + b"\0\0" + struct.pack(order + "I", 0)
    return tag + vr + struct.pack(order + "H", 0)
