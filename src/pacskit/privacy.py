"""The patient-name policy, applied in one place on every way out.

By default pacskit never requests patient names (C-FIND return keys, QIDO-RS fields),
drops them from every response, blanks them in every instance a retrieve writes or
hands back, and refuses a layout that would put one into a path. ``allow_patient_names``
opts in. The archive (server side) stores what it is sent, unchanged, and does not use
this policy.

Names are found at any depth: in sequences, and in UN elements that hold a sequence
(:mod:`pacskit.unknown_vr`). A name element's value is never decoded — only its length
is looked at — so that no conversion warning of pydicom can quote it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement

from pacskit.errors import UsageError
from pacskit.unknown_vr import encode_items, is_sequence, read_items, unknown_value

if TYPE_CHECKING:
    from pacskit.layout import Layout

PATIENT_NAME_KEYWORDS = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
)
"""The attributes withheld: every person name of the patient (PS3.3 C.7.1.1)."""
PATIENT_NAME_TAGS = frozenset(tag for k in PATIENT_NAME_KEYWORDS if (tag := tag_for_keyword(k)) is not None)
_LITTLE_ENDIAN_TAGS = tuple(struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in PATIENT_NAME_TAGS)


@dataclass(frozen=True)
class PrivacyPolicy:
    """Whether patient names may be requested, shown and written.

    Attributes:
        allow_patient_names: the explicit opt-in; ``False`` by default.
    """

    allow_patient_names: bool = False

    @property
    def withholds_names(self) -> bool:
        """``True`` when names must not be requested, shown or written."""
        return not self.allow_patient_names

    def filter_return_keys(self, keys: Iterable[str]) -> list[str]:
        """``keys`` without the patient-name keywords, unless names are allowed."""
        if self.allow_patient_names:
            return list(keys)
        return [k for k in keys if k not in PATIENT_NAME_KEYWORDS]

    def check_layout(self, layout: Layout) -> None:
        """Refuse a layout that would write a withheld name into a path.

        Raises:
            UsageError: a field of ``layout`` is a patient name, and names are withheld.
        """
        if self.allow_patient_names:
            return
        named = [field for field in layout.fields if field in PATIENT_NAME_KEYWORDS]
        if named:
            raise UsageError(f"invalid layout {layout.template!r}: {{{named[0]}}} is a patient name, "
                             "which pacskit does not write unless allow_patient_names is set")

    def scrub_response(self, dataset: Dataset) -> Dataset:
        """Delete patient-name attributes from a query response (in place; returned)."""
        if self.withholds_names:
            _walk(dataset, _Action.DELETE)
        return dataset

    def blank_instance(self, dataset: Dataset) -> Dataset:
        """Empty the patient-name attributes of an instance, at any depth (in place).

        The attributes stay present (PatientName is Type 2 in most IODs) but empty. A UN
        element that holds a name in a sequence pacskit cannot read is removed.
        """
        if self.withholds_names:
            _walk(dataset, _Action.BLANK)
        return dataset


DEFAULT_PRIVACY = PrivacyPolicy()


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
