"""The Basic Application Level Confidentiality Profile (PS3.15 E.1, E.3) applied to a
pydicom dataset, in place, with the options chosen."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydicom import Dataset, Sequence
from pydicom.datadict import dictionary_VR
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from pacskit.deid.dates import shift_date, shift_datetime
from pacskit.deid.options import BASIC_PROFILE, OPTION_CODES, method_code
from pacskit.deid.pseudonyms import Pseudonyms
from pacskit.deid.table import Table, load_table

PATIENT_ID = 0x00100020
TIMEZONE_OFFSET = 0x00080201
"""Timezone Offset From UTC: C under Retain Longitudinal Temporal Information with
Modified Dates; whole-day offsets leave it true, so it is kept as it is."""
FILE_META_AE_TITLES = (0x00020016, 0x00020017, 0x00020018)
"""Source, Sending and Receiving Application Entity Title (PS3.10 7.1): a device's identity."""
FILE_META_PRIVATE = (0x00020100, 0x00020102)
TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"})
DUMMIES: dict[str, object] = {
    "AE": "ANONYMOUS", "AS": "000Y", "CS": "ANONYMOUS", "DA": "19000101", "DS": "0",
    "DT": "19000101000000", "IS": "0", "LO": "ANONYMOUS", "LT": "ANONYMOUS", "PN": "ANONYMOUS",
    "SH": "ANONYMOUS", "ST": "ANONYMOUS", "TM": "000000", "UC": "ANONYMOUS", "UT": "ANONYMOUS",
    "UR": "", "US": 0, "SS": 0, "UL": 0, "SL": 0, "UV": 0, "SV": 0, "FL": 0.0, "FD": 0.0,
    "AT": 0, "OB": b"\0\0", "OW": b"\0\0", "OD": b"\0" * 8, "OF": b"\0" * 4, "OL": b"\0" * 4,
    "OV": b"\0" * 8, "UN": b"\0\0",
}
SHORTEST_SCRUBBED = 3
AE_PSEUDONYM_LENGTH = 16
CLEANED = "***"


class Deidentifier:
    """De-identifies datasets under one secret and one set of options.

    Each attribute of PS3.15 Table E.1-1 gets the action of its row under the options
    (:meth:`pacskit.deid.table.Row.action`); attributes the table does not list are kept,
    sequences are entered at any depth, and private attributes are removed (with
    ``retain-safe-private`` only those known safe are kept: Table E.3.10-1 is not in the
    machine-readable edition used, so none is). Replacement UIDs, the Patient ID and the
    date offset are keyed pseudonyms (:class:`~pacskit.deid.pseudonyms.Pseudonyms`).

    Args:
        secret: the key of every pseudonym.
        options: option names (:data:`pacskit.deid.options.OPTIONS`).
        table: Table E.1-1; the shipped edition by default.
    """

    def __init__(self, secret: bytes, options: Iterable[str] = (), table: Table | None = None) -> None:
        self.table = table or load_table()
        self.options = frozenset(options)
        self.pseudonyms = Pseudonyms(secret)
        self._exact, self._masked, self._private = self.table.actions(self.options)
        self.modified_dates = "retain-modified-dates" in self.options
        masked = ((value[1] << 16 | value[3], action) for value, action in self._masked.items())
        self.cleans_text = any(action == "C" and _vr(tag) in TEXT_VRS - {"AE"} and tag != TIMEZONE_OFFSET
                               for tag, action in (*self._exact.items(), *masked))

    def action(self, tag: int) -> str | None:
        """The action for ``tag`` under the options; None for an attribute the table
        does not list (kept)."""
        if tag >> 16 & 1:
            return self._private
        action = self._exact.get(tag)
        if action is None and self._masked:
            group, element = tag >> 16, tag & 0xFFFF
            for (group_mask, group_value, element_mask, element_value), masked in self._masked.items():
                if group & group_mask == group_value and element & element_mask == element_value:
                    return masked
        return action

    def __call__(self, dataset: Dataset, *, record: bool = True) -> Dataset:
        """De-identify ``dataset`` (and its file meta information) in place; with
        ``record``, say so in it (PS3.15 E.1.1: Patient Identity Removed, De-identification
        Method and its Code Sequence, Longitudinal Temporal Information Modified)."""
        days = None
        if self.modified_dates and PATIENT_ID in dataset:
            days = self.pseudonyms.day_offset(str(dataset[PATIENT_ID].value or ""))
        scrub = _scrubber(self._identifiers(dataset)) if self.cleans_text else None
        self._walk(dataset, days, scrub)
        meta = getattr(dataset, "file_meta", None)
        if meta is not None:
            self._file_meta(meta)
        if record:
            self._record(dataset)
        return dataset

    def _walk(self, dataset: Dataset, days: int | None, scrub: re.Pattern[str] | None) -> None:
        for tag in list(dataset.keys()):
            action = self.action(tag)
            if action is None or action == "K":
                self._enter(dataset, tag, days, scrub)
            elif action == "X" or (action == "C" and tag >> 16 & 1):
                del dataset[tag]
            else:
                self._apply(dataset, tag, action, days, scrub)

    def _enter(self, dataset: Dataset, tag: BaseTag, days: int | None, scrub: re.Pattern[str] | None) -> None:
        raw = dataset.get_item(tag)
        if raw is None or raw.VR not in (None, "SQ", "UN"):
            return
        element = dataset[tag]
        if element.VR == "SQ":
            for item in element.value:
                self._walk(item, days, scrub)

    def _apply(self, dataset: Dataset, tag: BaseTag, action: str, days: int | None,
               scrub: re.Pattern[str] | None) -> None:
        element = dataset[tag]
        vr = element.VR
        if vr == "SQ":
            if action == "Z":
                element.value = Sequence()
            else:
                for item in element.value:
                    self._walk(item, days, scrub)
            return
        if action == "Z":
            element.value = None
        elif action == "U" or (action in ("D", "U*") and vr == "UI"):
            element.value = _each(element.value, self.pseudonyms.uid)
        elif action == "D":
            if tag == PATIENT_ID:
                element.value = self.pseudonyms.patient_id(str(element.value or ""))
            else:
                element.value = DUMMIES.get(vr, b"\0\0")
        elif action == "C":
            self._clean(dataset, tag, days, scrub)
        else:
            del dataset[tag]

    def _clean(self, dataset: Dataset, tag: BaseTag, days: int | None, scrub: re.Pattern[str] | None) -> None:
        """C: a value of similar meaning without the identifying part (PS3.15 E.1.1):
        dates moved by the patient's offset, a time of day and the Timezone Offset From
        UTC kept (the offset is whole days), an AE title replaced by a keyed pseudonym, text with every identifying
        value this profile removed elsewhere in the dataset struck out. A binary value
        cannot be cleaned: it is removed."""
        element = dataset[tag]
        vr = element.VR
        if vr in ("DA", "DT"):
            shift = shift_date if vr == "DA" else shift_datetime
            moved = None if days is None else _each(element.value, lambda v: shift(v, days))
            if moved is None or (isinstance(moved, list) and None in moved):
                element.value = None
            else:
                element.value = moved
        elif vr == "TM" or tag == TIMEZONE_OFFSET:
            return
        elif vr == "AE":
            element.value = _each(element.value,
                                  lambda v: self.pseudonyms.text("ae", v, AE_PSEUDONYM_LENGTH) if v else v)
        elif vr in TEXT_VRS:
            if scrub is not None and element.value:
                element.value = _each(element.value, lambda v: scrub.sub(CLEANED, v) if v else v)
        else:
            del dataset[tag]

    def _identifiers(self, dataset: Dataset) -> set[str]:
        """The text values (and name components) of every attribute this profile removes
        or replaces, at any depth: what a cleaned text must not quote."""
        found: set[str] = set()
        for element in dataset:
            if element.VR == "SQ":
                for item in element.value:
                    found |= self._identifiers(item)
                continue
            action = self.action(element.tag)
            if action in (None, "K", "C") or element.VR not in TEXT_VRS and element.VR != "UI":
                continue
            values = element.value if isinstance(element.value, MultiValue) else [element.value]
            for value in values:
                text = str(value or "")
                found.update(p for p in (text, *re.split(r"[\^=]", text)) if len(p.strip()) >= SHORTEST_SCRUBBED)
        return found

    def _file_meta(self, meta: Dataset) -> None:
        """The file meta information (PS3.10 7.1): its rows of Table E.1-1 (the Media
        Storage SOP Instance UID), and the AE titles of the devices it passed through."""
        self._walk(meta, None, None)
        if "retain-device-identity" not in self.options:
            for tag in FILE_META_AE_TITLES:
                if tag in meta:
                    del meta[tag]
        for tag in FILE_META_PRIVATE:
            if tag in meta:
                del meta[tag]

    def _record(self, dataset: Dataset) -> None:
        for element in self.recorded():
            dataset[element.tag] = element

    def recorded(self) -> Dataset:
        """The attributes that say how a dataset was de-identified."""
        dataset = Dataset()
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = [f"PS3.15 E.1-1 {self.table.edition} Basic Profile (pacskit)",
                                          *sorted(self.options)]
        codes = [method_code(k) for k in (BASIC_PROFILE, *(OPTION_CODES[o] for o in sorted(self.options)))]
        items = []
        for code in codes:
            item = Dataset()
            item.CodeValue = code.value
            item.CodingSchemeDesignator = code.scheme_designator
            item.CodeMeaning = code.meaning
            items.append(item)
        dataset.DeidentificationMethodCodeSequence = Sequence(items)
        dataset.LongitudinalTemporalInformationModified = (
            "MODIFIED" if self.modified_dates
            else "UNMODIFIED" if "retain-full-dates" in self.options else "REMOVED")
        return dataset


def _each(value: object, change):  # type: ignore[no-untyped-def]
    if isinstance(value, MultiValue | list):
        return [change(str(v)) for v in value]
    return change(str(value)) if value not in (None, "") else value


def _scrubber(identifiers: set[str]) -> re.Pattern[str] | None:
    if not identifiers:
        return None
    words = sorted((re.escape(i.strip()) for i in identifiers), key=len, reverse=True)
    return re.compile("|".join(words), re.IGNORECASE)


def _vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"
