"""Matching a Modality Worklist C-FIND identifier against one worklist item (pure).

The rules are those of PS3.4 K.2.2 and C.2.2.2, on every attribute the identifier
carries, at any depth:

* single value, wildcard, range and list-of-UID matching as :func:`pacskit.query.match_values`
  does for Query/Retrieve (a value the item does not have fails every matching key,
  K.2.2.1.1.1);
* a date key and its time key (Scheduled Procedure Step Start Date and Time, say) that
  are both ranges of the same shape are matched as one date-time range (C.2.2.2.5);
  otherwise each is matched alone;
* sequence matching (C.2.2.2.6): a key sequence holds one item; the item's record
  matches when at least one item of its sequence matches every key of that item, and
  only the matching items are returned, with the requested attributes only. A key
  sequence with no item, or with an empty item, returns the whole sequence;
* every key is also a return key (K.2.2.1.2): an attribute the item lacks comes back
  empty, a sequence it lacks as an empty sequence.

Specific Character Set is never matched (C.2.2.2); private attributes are ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from pacskit.errors import QueryError
from pacskit.query import check_value, match_values, range_bound
from pacskit.worklist.model import DATE_TIME_PAIRS

SPECIFIC_CHARACTER_SET = 0x00080005
TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC"})


@dataclass(frozen=True)
class IdentifierError(Exception):
    """An identifier that is not a Modality Worklist query (answered 0xA900, Identifier
    Does Not Match SOP Class, PS3.4 Table K.4-1).

    Attributes:
        reason: why, in one line.
        offending: the keyword of the attribute at fault.
    """

    reason: str
    offending: str = ""

    def __str__(self) -> str:
        return self.reason


def check_identifier(identifier: Dataset, path: str = "") -> None:
    """Refuse an identifier that cannot be matched: a key sequence with more than one
    item (PS3.4 C.2.2.2.6 asks for a single item), or a malformed value (a bad date,
    time, range or UID; a wildcard where none is allowed).

    Raises:
        IdentifierError: the first fault found.
    """
    for element in identifier:
        if element.tag.is_private or not element.keyword or element.tag == SPECIFIC_CHARACTER_SET:
            continue
        where = f"{path}{element.keyword}"
        if element.VR == "SQ":
            items = element.value or []
            if len(items) > 1:
                raise IdentifierError(f"{where} holds {len(items)} items: a key sequence holds one "
                                      "(PS3.4 C.2.2.2.6)", element.keyword)
            if items:
                check_identifier(items[0], f"{where}>")
            continue
        pattern = pattern_of(element)
        if pattern:
            try:
                check_value(element.keyword, pattern)
            except QueryError as exc:
                raise IdentifierError(f"{path}{exc}", element.keyword) from None


def pattern_of(element: DataElement) -> str:
    """The matching value of a key as text; several values joined by backslashes."""
    value = element.value
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def element_of(dataset: Dataset, keyword: str) -> DataElement | None:
    """The element of ``keyword`` in ``dataset`` (not its value), if present."""
    tag = tag_for_keyword(keyword)
    return dataset.get(tag) if tag is not None else None


def values_of(element: DataElement | None) -> list[str]:
    """The non-empty values of an item's attribute, stripped."""
    if element is None or element.value is None:
        return []
    value = element.value
    values = value if isinstance(value, (list, tuple, MultiValue)) else [value]
    return [text for text in (str(v).strip() for v in values if v is not None) if text]


def match(identifier: Dataset, item: Dataset) -> Dataset | None:
    """The response identifier ``item`` gives to ``identifier``, or None when it does
    not match (see the module docstring). The identifier is assumed checked
    (:func:`check_identifier`)."""
    return Matcher(identifier).match(item)


class Matcher:
    """An identifier made ready to match many items (:func:`match` for each): its keys,
    their matching values, the date-time pairs and the key sequences' own matchers are
    worked out once."""

    def __init__(self, identifier: Dataset) -> None:
        self.keys = [(e, keyword) for e in identifier
                     if (keyword := _keyword(e.tag)) and not e.tag.is_private and e.tag != SPECIFIC_CHARACTER_SET]
        self.tags = {keyword: int(e.tag) for e, keyword in self.keys}
        self.constrained = {keyword: pattern_of(e) for e, keyword in self.keys if e.VR != "SQ"}
        self.paired = _paired(self.constrained)
        self.times = set(self.paired.values())
        self.empty = {int(e.tag): _returned(e, None) for e, _ in self.keys if e.VR != "SQ"}
        self.sequences: dict[int, tuple[Matcher | None, bool]] = {}
        for element, _ in self.keys:
            if element.VR == "SQ":
                key_items = element.value or []
                inner = key_items[0] if key_items and len(key_items[0]) else None
                self.sequences[element.tag] = ((Matcher(inner), _constrains(inner)) if inner is not None
                                               else (None, False))

    def match(self, item: Dataset) -> Dataset | None:
        """The response identifier of ``item``, or None when it does not match."""
        parts = self.parts(item)
        return None if parts is None else response_of(parts)

    def parts(self, item: Record) -> Parts | None:
        """What ``item`` answers, key by key in tag order (see :data:`Parts`), or None
        when it does not match. ``item`` is a dataset, or anything that gives an
        element's ``VR`` and ``value`` by tag the way one does
        (:class:`pacskit.worklist.records.EncodedItem`), its sequences' items by
        :func:`items_of`."""
        parts: Parts = []
        for element, keyword in self.keys:
            tag = self.tags[keyword]
            found = item.get(tag)
            if element.VR == "SQ":
                returned = self._sequence(element, found)
                if returned is None:
                    return None
                parts.append(returned)
                continue
            if keyword in self.paired:
                if not _match_pair(keyword, self.paired[keyword], self.constrained, item):
                    return None
            elif keyword not in self.times and not match_values(
                    keyword, self.constrained[keyword],
                    found.stripped if hasattr(found, "stripped") else values_of(found)):
                return None
            parts.append((EMPTY, self.empty[tag]) if found is None or found.VR == "SQ" else (FOUND, found))
        return parts

    def _sequence(self, key: DataElement, found: Any) -> Part | None:
        """The part of a key sequence, or None when no item matches."""
        record_items = items_of(found) if found is not None and found.VR == "SQ" else []
        inner, constrains = self.sequences[key.tag]
        if inner is None:
            return (WHOLE, key.tag, record_items)
        matched = [m for m in (inner.parts(record) for record in record_items) if m is not None]
        if not matched and constrains:
            return None
        return (MATCHED, key.tag, matched)


FOUND, EMPTY, WHOLE, MATCHED = "found", "empty", "whole", "matched"
Part = tuple[Any, ...]
Parts = list[Part]
"""A response as :meth:`Matcher.parts` gives it, one part per key in tag order:
``(FOUND, element)`` the item's element as it is; ``(EMPTY, element)`` an element with no
value for a key the item lacks; ``(WHOLE, tag, items)`` a sequence of the item's items
whole; ``(MATCHED, tag, [parts, ...])`` a sequence of the matching items, each its own
parts."""

Record = Any


def items_of(element: Any) -> list[Any]:
    """The items of a sequence element: an encoded item's own (``items``), else its
    value."""
    items = getattr(element, "items", None)
    if isinstance(items, list):
        return items
    return list(element.value or [])


def response_of(parts: Parts) -> Dataset:
    """The response identifier that ``parts`` describe, as a dataset."""
    response = Dataset()
    for part in parts:
        kind = part[0]
        if kind == FOUND:
            element = part[1]
            found: DataElement = element.element if hasattr(element, "element") else element
            response.add(copy.copy(found))
        elif kind == EMPTY:
            response.add(part[1])
        elif kind == WHOLE:
            response.add(DataElement(part[1], "SQ", Sequence(
                [copy.deepcopy(getattr(i, "dataset", i)) for i in part[2]])))
        else:
            response.add(DataElement(part[1], "SQ", Sequence([response_of(p) for p in part[2]])))
    return response


@cache
def _keyword(tag: int) -> str:
    return keyword_for_tag(tag)


def _constrains(identifier: Dataset) -> bool:
    """Whether any key of ``identifier``, at any depth, has a matching value."""
    for element in identifier:
        if element.tag.is_private or not element.keyword or element.tag == SPECIFIC_CHARACTER_SET:
            continue
        if element.VR == "SQ":
            if any(_constrains(i) for i in element.value or []):
                return True
        elif pattern_of(element) not in ("", "*"):
            return True
    return False


def _returned(key: DataElement, found: DataElement | None) -> DataElement:
    if found is None or found.VR == "SQ":
        vr = key.VR if key.VR not in ("UN", "") else dictionary_VR(key.tag)
        return DataElement(key.tag, vr, None)
    return copy.copy(found)  # its value is shared with the item, which nothing changes


def _paired(constrained: dict[str, str]) -> dict[str, str]:
    """Date key → time key, for the pairs whose both keys are ranges of one shape."""
    pairs = {}
    for date_key, time_key in DATE_TIME_PAIRS.items():
        date, time = constrained.get(date_key, ""), constrained.get(time_key, "")
        if date and time and _shape(date) == _shape(time) and _shape(date)[0]:
            pairs[date_key] = time_key
    return pairs


def _shape(pattern: str) -> tuple[bool, bool, bool]:
    """(is a range, has a start, has an end)."""
    start, sep, end = pattern.partition("-")
    return bool(sep), bool(start), bool(end)


def _match_pair(date_key: str, time_key: str, constrained: dict[str, str], item: Record) -> bool:
    """The combined date-time range match of C.2.2.2.5: (date, time) of the item within
    (start date + start time, end date + end time)."""
    dates = values_of(element_of(item, date_key))
    times = values_of(element_of(item, time_key)) or ["000000"]
    if not dates:
        return False
    date_start, _, date_end = constrained[date_key].partition("-")
    time_start, _, time_end = constrained[time_key].partition("-")
    low = range_bound("DT", date_start + time_start.replace(":", ""), low=True) if date_start else ""
    high = range_bound("DT", date_end + time_end.replace(":", ""), low=False) if date_end else ""
    for when in (d + t.replace(":", "") for d in dates for t in times):
        moment = range_bound("DT", when, low=True)
        if (not low or moment >= low) and (not high or moment <= high):
            return True
    return False


def text_elements(dataset: Dataset) -> Iterator[DataElement]:
    """The elements of a text VR affected by Specific Character Set, at any depth."""
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value or []:
                yield from text_elements(item)
        elif element.VR in TEXT_VRS:
            yield element
