"""The Modality Performed Procedure Step SOP Class (PS3.4 F.7): its SOP classes, its
states and their transitions, and the checks an SCP makes of an N-CREATE and an N-SET
against :data:`pacskit.mpps.requirements.TABLE` (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement

from pacskit.mpps.requirements import NOT_SETTABLE, SERIES, TOP_LEVEL, Requirement, nested
from pacskit.worklist.model import ItemStatus

MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3"
"""Modality Performed Procedure Step SOP Class: N-CREATE and N-SET (PS3.4 F.7.3)."""
MPPS_RETRIEVE_SOP_CLASS = "1.2.840.10008.3.1.2.3.4"
"""Modality Performed Procedure Step Retrieve SOP Class: N-GET (PS3.4 F.8)."""

STATUS_KEYWORD = "PerformedProcedureStepStatus"
STATUS_TAG = 0x00400252

INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
NO_LONGER_UPDATABLE = 0xA710
"""Error ID of an N-SET on a step whose status is final (PS3.4 Table F.7.2-2)."""


class StepStatus(str, Enum):
    """Performed Procedure Step Status (0040,0252), PS3.4 Table F.1-3: a step is created
    IN PROGRESS and ends COMPLETED or DISCONTINUED; a final status is final."""

    IN_PROGRESS = "IN PROGRESS"
    COMPLETED = "COMPLETED"
    DISCONTINUED = "DISCONTINUED"

    @property
    def is_final(self) -> bool:
        return self is not StepStatus.IN_PROGRESS

    def can_become(self, other: StepStatus) -> bool:
        """Whether an N-SET may move a step from this status to ``other`` (F.7.2.2.3)."""
        return not self.is_final

    @property
    def worklist_status(self) -> ItemStatus:
        """The status the linked worklist item follows to."""
        return {StepStatus.IN_PROGRESS: ItemStatus.STARTED, StepStatus.COMPLETED: ItemStatus.COMPLETED,
                StepStatus.DISCONTINUED: ItemStatus.DISCONTINUED}[self]

    @classmethod
    def parse(cls, text: str) -> StepStatus:
        """A status from its value, any case, ``_`` for the space.

        Raises:
            ValueError: not a status.
        """
        try:
            return cls(" ".join(text.replace("_", " ").split()).upper())
        except ValueError:
            raise ValueError(f"unknown status {text!r}: use IN PROGRESS, COMPLETED or DISCONTINUED") from None


class StepRefused(Exception):
    """An N-CREATE or N-SET the SCP refuses: its DIMSE status, Offending Element tags,
    Error Comment and Error ID (PS3.7 C.4)."""

    def __init__(self, status: int, comment: str, tags: Iterable[int] = (), error_id: int | None = None) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment
        self.tags = tuple(tags)
        self.error_id = error_id


def check_create(dataset: Dataset) -> StepStatus:
    """Check an N-CREATE's attributes (PS3.4 F.7.2.1): every type 1 and 2 attribute of
    Table F.7.2-1 present (0x0120, Missing Attribute), every type 1 with a value (0x0121,
    Missing Attribute Value), at any depth the table goes; the status IN PROGRESS
    (F.7.2.1.3: 0x0106, Invalid Attribute Value).

    Raises:
        StepRefused: with the offending tags.
    """
    missing, empty = _requirements_unmet(dataset, TOP_LEVEL, "create", ())
    _refuse_unmet(missing, empty, "N-CREATE")
    status = status_of(dataset)
    if status is not StepStatus.IN_PROGRESS:
        raise StepRefused(INVALID_ATTRIBUTE_VALUE, "Performed Procedure Step Status must be IN PROGRESS",
                          (STATUS_TAG,))
    return status


def check_set(stored: Dataset, modifications: Dataset) -> Dataset:
    """Check an N-SET of a stored step (PS3.4 F.7.2.2) and return the step as it becomes:
    each attribute the N-SET carries replaces the stored one (a sequence whole).

    Refused, in this order: a step already COMPLETED or DISCONTINUED (0x0110, Error ID
    0xA710); an attribute Table F.7.2-1 does not allow in an N-SET, or a status that is
    not one (0x0106); a sequence item lacking what the table requires (0x0120, 0x0121);
    a final status without the Final State attributes — end date and time, and a
    Performed Series Sequence of at least one item (Note 2) — (0x0120, 0x0121).

    Raises:
        StepRefused: with the offending tags.
    """
    current = status_of(stored)
    if current is not None and current.is_final:
        raise StepRefused(PROCESSING_FAILURE, "Performed Procedure Step Object may no longer be updated",
                          (STATUS_TAG,), NO_LONGER_UPDATABLE)
    refused = [e.tag for e in modifications if e.keyword in NOT_SETTABLE]
    if refused:
        raise StepRefused(INVALID_ATTRIBUTE_VALUE, "attributes an N-SET may not set (Table F.7.2-1)", refused)
    if STATUS_KEYWORD in modifications and status_of(modifications) is None:
        raise StepRefused(INVALID_ATTRIBUTE_VALUE, "not a Performed Procedure Step Status", (STATUS_TAG,))
    settable = tuple(r for r in TOP_LEVEL if r.keyword in modifications and r.set is not None)
    missing, empty = _requirements_unmet(modifications, settable, "set", (), present_only=True)
    _refuse_unmet(missing, empty, "N-SET")
    merged = apply_set(stored, modifications)
    status = status_of(merged)
    if status is not None and status.is_final:
        final = tuple(r for r in TOP_LEVEL if r.final is not None)
        missing, empty = _requirements_unmet(merged, final, "final", ())
        _refuse_unmet(missing, empty, f"{status.value} step")
    return merged


def apply_set(stored: Dataset, modifications: Dataset) -> Dataset:
    """``stored`` with the attributes of ``modifications`` in place of its own (a copy)."""
    merged = Dataset.from_json(stored.to_json_dict())
    for element in modifications:
        if element.keyword == "SpecificCharacterSet":
            continue
        merged[element.tag] = element
    return merged


def status_of(dataset: Dataset) -> StepStatus | None:
    """The dataset's Performed Procedure Step Status, if it holds a valid one."""
    value = dataset.get(STATUS_KEYWORD)
    try:
        return StepStatus(str(value).strip()) if value else None
    except ValueError:
        return None


def _requirements_unmet(dataset: Dataset, rows: tuple[Requirement, ...], column: str, parent: tuple[str, ...],
                        *, present_only: bool = False) -> tuple[list[int], list[int]]:
    """The tags of the rows ``dataset`` lacks (type 1 or 2 under ``column``) and of those
    it holds empty (type 1), inside the sequences the table describes as well."""
    missing: list[int] = []
    empty: list[int] = []
    for row in rows:
        kind = getattr(row, column)
        tag = tag_for_keyword(row.keyword)
        if tag is None:  # the requirement tables name dictionary keywords only
            raise KeyError(row.keyword)
        element = _element(dataset, row.keyword)
        if element is None:
            if kind in ("1", "2") and not present_only:
                missing.append(tag)
            continue
        if kind == "1" and _is_empty(element):
            empty.append(tag)
        if element.VR == "SQ":
            inner = nested(row.path) if column != "final" else _final_items(row)
            for item in element.value:
                more_missing, more_empty = _requirements_unmet(
                    item, inner, "set" if column == "final" else column, row.path)
                missing += [t for t in more_missing if t not in missing]
                empty += [t for t in more_empty if t not in empty]
    return missing, empty


def _element(dataset: Dataset, keyword: str) -> DataElement | None:
    try:
        return dataset[keyword]
    except KeyError:
        return None


def _final_items(row: Requirement) -> tuple[Requirement, ...]:
    """What the items of a sequence must hold in the final state: the N-SET types."""
    return nested(row.path) if row.keyword == SERIES else ()


def _is_empty(element: DataElement) -> bool:
    value = element.value
    if element.VR == "SQ":
        return len(value) == 0
    return value is None or value == "" or (isinstance(value, (list, tuple, bytes)) and len(value) == 0)


def _refuse_unmet(missing: list[int], empty: list[int], what: str) -> None:
    if missing:
        raise StepRefused(MISSING_ATTRIBUTE, f"{what} lacks required attributes", missing)
    if empty:
        raise StepRefused(MISSING_ATTRIBUTE_VALUE, f"{what} has required attributes empty", empty)
