"""Patient names in a pydicom dataset, at any depth: found, emptied or deleted for
:class:`pacskit.privacy.PrivacyPolicy`.

Names are found in sequences, and in UN elements that hold a sequence
(:mod:`pacskit.unknown_vr`). A name element's value is never decoded — only its length
is looked at — so that no conversion warning of pydicom can quote it.
"""

from __future__ import annotations

import struct
from enum import Enum

from pydicom import Dataset
from pydicom.dataelem import DataElement, RawDataElement

from pacskit.privacy import PATIENT_NAME_TAGS
from pacskit.unknown_vr import encode_items, is_sequence, read_items, unknown_value

_LITTLE_ENDIAN_TAGS = tuple(struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in PATIENT_NAME_TAGS)


def blank_names(dataset: Dataset) -> None:
    """Empty the patient-name attributes of ``dataset`` at any depth (in place); a UN
    element that holds a name in a sequence that cannot be read is removed."""
    _walk(dataset, _Action.BLANK)


def delete_names(dataset: Dataset) -> None:
    """Delete the patient-name attributes of ``dataset`` at any depth (in place)."""
    _walk(dataset, _Action.DELETE)


def contains_names(dataset: Dataset) -> bool:
    """Whether any patient-name attribute at any depth has a value (or a UN element may
    hold one in a sequence that cannot be read)."""
    return _walk(dataset, _Action.FIND)


class _Action(Enum):
    FIND = "find"
    BLANK = "blank"
    DELETE = "delete"


def _walk(dataset: Dataset, action: _Action) -> bool:
    """Whether ``dataset`` holds a name at any depth; each is blanked or deleted as
    ``action`` says. Elements are read with ``get_item``, which does not convert them;
    only sequences are (their items' elements stay as they were read)."""
    found = False
    for tag in list(dataset.keys()):
        element = dataset.get_item(tag)
        if tag in PATIENT_NAME_TAGS:
            filled = _has_value(element)
            found |= filled
            if action is _Action.DELETE:
                del dataset[tag]
            elif action is _Action.BLANK and filled:
                dataset[tag] = DataElement(tag, "PN", "")
        elif is_sequence(element):
            for item in dataset[tag].value or ():
                found |= _walk(item, action)
        elif (value := unknown_value(element)) is not None and _may_hold_names(value):
            found |= _walk_unknown(dataset, tag, value, action)
    return found


def _walk_unknown(dataset: Dataset, tag: int, value: bytes, action: _Action) -> bool:
    """A UN value that may hold a name: read as a sequence, its names blanked or deleted
    and the items encoded back; removed whole if it cannot be read."""
    parsed = read_items(value)
    if parsed is None:
        if action is not _Action.FIND:
            del dataset[tag]
        return True
    items, encoding = parsed
    found = False
    for item in items:
        found |= _walk(item, action)
    if found and action is not _Action.FIND:
        dataset[tag] = DataElement(tag, "UN", encode_items(items, encoding))
    return found


def _has_value(element: DataElement | RawDataElement) -> bool:
    value = element.value
    if isinstance(value, bytes):
        return bool(value.strip(b" \0"))
    return bool(value)


def _may_hold_names(value: bytes) -> bool:
    return any(pattern in value for pattern in _LITTLE_ENDIAN_TAGS)
