"""A worklist item made ready to answer many queries without a dataset per response:
each element keeps its value for matching (:class:`~pacskit.worklist.matching.Matcher`
reads it as it reads a dataset) and is encoded once, in Little Endian, in the item's
character set, the bytes pydicom would write (PS3.5 7.1, 7.5). A response is then the
concatenation of the bytes of the parts :meth:`Matcher.parts` gives
(:func:`encode_parts`).

Only what pydicom would write the same way is encoded here; anything else (a nested
Specific Character Set, an ambiguous VR, a Big Endian or deflated syntax, a response
that needs another character set than its item's) makes :func:`encode_parts` answer
None, and the response is then built as a dataset and encoded by pydicom.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

from pacskit.worklist.matching import EMPTY, FOUND, TEXT_VRS, WHOLE, Parts, values_of

SPECIFIC_CHARACTER_SET = 0x00080005
ITEM_TAG = (0xFFFE, 0xE000)
_EXPLICIT_SQ = struct.Struct("<HH2sHL")
_IMPLICIT_HEADER = struct.Struct("<HHL")


class EncodedElement:
    """One element of an :class:`EncodedItem`: its ``tag``, ``VR`` and ``value`` as the
    dataset's, ``stripped`` its non-empty values as matching reads them, ``items`` for a
    sequence, its encoding made on first use."""

    __slots__ = ("tag", "VR", "value", "element", "stripped", "items", "is_text", "text", "_names", "_encoded")

    def __init__(self, element: DataElement, names: list[str], nested: bool) -> None:
        self.tag = element.tag
        self.VR = element.VR
        self.value = element.value
        self.element = element
        if element.VR != "SQ":
            self.stripped = values_of(element)
        self.items = ([EncodedItem(i, names, nested=True) for i in element.value or []]
                      if element.VR == "SQ" else None)
        self.is_text = element.VR in TEXT_VRS
        self.text = str(element.value) if self.is_text and element.value not in (None, "") else None
        self._names = names
        self._encoded: list[bytes | None | bool] = [False, False]

    def encoded(self, implicit: bool) -> bytes | None:
        """The element's bytes, header included; None if it is not encoded here."""
        known = self._encoded[implicit]
        if known is False:
            known = self._encoded[implicit] = self._encode(implicit)
        return known  # type: ignore[return-value]

    def _encode(self, implicit: bool) -> bytes | None:
        if self.tag.element == 0 and self.tag.group > 6:
            return b""
        if self.items is not None:
            contents = [i.encoded(implicit) for i in self.items]
            if any(c is None for c in contents):
                return None
            return sequence_bytes(self.tag, contents, implicit)  # type: ignore[arg-type]
        return element_bytes(self.element, self._names, implicit)


class EncodedItem:
    """A worklist item (or an item of one of its sequences) as :class:`EncodedElement`
    by tag. ``get(tag)`` is what matching reads; ``dataset`` is the item itself."""

    __slots__ = ("dataset", "elements", "names", "simple", "has_text", "texts", "_encoded")

    def __init__(self, dataset: Dataset, names: list[str] | None = None, *, nested: bool = False) -> None:
        self.dataset = dataset
        if names is None:
            names = values_of(dataset.get(SPECIFIC_CHARACTER_SET))
        self.names = names
        self.elements = {int(e.tag): EncodedElement(e, names, nested) for e in dataset}
        self.simple: bool = (not (nested and SPECIFIC_CHARACTER_SET in self.elements)
                       and all(len(e.VR) == 2 and (e.items is None or all(i.simple for i in e.items))
                               for e in self.elements.values()))
        self.has_text = False
        self.texts: list[str] = []
        for element in self.elements.values():
            if element.items is not None:
                for item in element.items:
                    self.has_text = self.has_text or item.has_text
                    self.texts += item.texts
            elif element.is_text:
                self.has_text = True
                if element.text is not None:
                    self.texts.append(element.text)
        self._encoded: list[bytes | None | bool] = [False, False]

    def get(self, tag: int) -> EncodedElement | None:
        return self.elements.get(tag)

    def encoded(self, implicit: bool) -> bytes | None:
        """The item's elements, encoded in tag order."""
        known = self._encoded[implicit]
        if known is False:
            parts = [self.elements[t].encoded(implicit) for t in sorted(self.elements)]
            known = self._encoded[implicit] = (None if not self.simple or any(p is None for p in parts)
                                               else b"".join(parts))  # type: ignore[arg-type]
        return known  # type: ignore[return-value]


def encode_parts(parts: Parts, implicit: bool, character_set: Any = None) -> bytes | None:
    """The response ``parts`` encoded in Little Endian (``implicit`` VR or explicit),
    with ``character_set`` as its Specific Character Set when given; None when one of
    them is not encoded here."""
    out: list[bytes] = []
    pending = character_set is not None
    for part in parts:
        kind = part[0]
        tag = part[1].tag if kind in (FOUND, EMPTY) else part[1]
        if pending and tag > SPECIFIC_CHARACTER_SET:
            out.append(_character_set_bytes(_hashable(character_set), implicit))
            pending = False
        if kind == FOUND:
            encoded = part[1].encoded(implicit)
        elif kind == EMPTY:
            encoded = _empty_bytes(part[1].tag, part[1].VR, implicit)
        elif kind == WHOLE:
            contents = [i.encoded(implicit) for i in part[2]]
            encoded = None if any(c is None for c in contents) else sequence_bytes(tag, contents, implicit)
        else:
            contents = [encode_parts(p, implicit) for p in part[2]]
            encoded = None if any(c is None for c in contents) else sequence_bytes(tag, contents, implicit)
        if encoded is None:
            return None
        out.append(encoded)
    if pending:
        out.append(_character_set_bytes(_hashable(character_set), implicit))
    return b"".join(out)


def texts_of(parts: Parts) -> tuple[bool, list[str]]:
    """Whether the response ``parts`` hold an element of a text VR, and their non-empty
    text values (what its Specific Character Set is chosen by)."""
    has_text = False
    texts: list[str] = []
    for part in parts:
        kind = part[0]
        if kind == FOUND:
            if part[1].is_text:
                has_text = True
                if part[1].text is not None:
                    texts.append(part[1].text)
        elif kind == EMPTY:
            has_text = has_text or part[1].VR in TEXT_VRS
        elif kind == WHOLE:
            for item in part[2]:
                has_text = has_text or item.has_text
                texts += item.texts
        else:
            for inner in part[2]:
                inner_has, inner_texts = texts_of(inner)
                has_text = has_text or inner_has
                texts += inner_texts
    return has_text, texts


def sequence_bytes(tag: int, items: list[bytes], implicit: bool) -> bytes:
    """A sequence of defined length holding ``items`` (each an item's encoded
    elements), items of defined length, as pydicom writes one (PS3.5 7.5)."""
    body = b"".join(_IMPLICIT_HEADER.pack(*ITEM_TAG, len(i)) + i for i in items)
    if implicit:
        return _IMPLICIT_HEADER.pack(tag >> 16, tag & 0xFFFF, len(body)) + body
    return _EXPLICIT_SQ.pack(tag >> 16, tag & 0xFFFF, b"SQ", 0, len(body)) + body


def element_bytes(element: DataElement, names: list[str] | None, implicit: bool) -> bytes | None:
    """``element`` as pydicom writes it in Little Endian, text in the character set
    ``names``; None if pydicom cannot write it."""
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = implicit
    try:
        write_data_element(out, element, names or None)
    except Exception:  # noqa: BLE001 - the dataset path then says why, as before
        return None
    return out.getvalue()


@lru_cache(maxsize=1024)
def _empty_bytes(tag: int, vr: str, implicit: bool) -> bytes | None:
    if (tag & 0xFFFF) == 0 and (tag >> 16) > 6:
        return b""
    if len(vr) != 2:
        return None
    return element_bytes(DataElement(tag, vr, None), None, implicit)


@lru_cache(maxsize=64)
def _character_set_bytes(value: str | tuple[str, ...], implicit: bool) -> bytes:
    encoded = element_bytes(DataElement(SPECIFIC_CHARACTER_SET, "CS",
                                        list(value) if isinstance(value, tuple) else value), None, implicit)
    assert encoded is not None
    return encoded


def _hashable(value: Any) -> str | tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else value
