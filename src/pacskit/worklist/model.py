"""The Modality Worklist Information Model (PS3.4 K.6.1): its SOP class, its keys, what
an item must hold, and the status pacskit keeps for each item (pure)."""

from __future__ import annotations

from enum import Enum

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
"""Modality Worklist Information Model - FIND (PS3.4 K.6.1.2)."""

STEP_SEQUENCE = "ScheduledProcedureStepSequence"
"""The Scheduled Procedure Step Sequence: one item, the step (PS3.4 Table K.6-1)."""

TOP_LEVEL_RETURN_KEYS: tuple[str, ...] = (
    "AccessionNumber", "PatientID", "PatientName", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "RequestedProcedureID", "RequestedProcedureDescription",
    "RequestedProcedurePriority", "ReferringPhysicianName",
)
"""The keys ``pacskit worklist`` asks for outside the step, names withheld by the
privacy policy."""

STEP_RETURN_KEYS: tuple[str, ...] = (
    "ScheduledStationAETitle", "ScheduledStationName", "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime", "Modality", "ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepDescription", "ScheduledProcedureStepID",
    "ScheduledProcedureStepLocation", "ScheduledProcedureStepStatus",
)
"""The keys ``pacskit worklist`` asks for inside the step."""

REQUIRED_TOP_LEVEL = ("PatientName", "PatientID", "StudyInstanceUID", "RequestedProcedureID")
"""Return Key Type 1 outside the step (PS3.4 Table K.6-1)."""

REQUIRED_IN_STEP = ("ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
                    "ScheduledProcedureStepStartTime", "Modality", "ScheduledProcedureStepID")
"""Return Key Type 1 inside the step (PS3.4 Table K.6-1)."""

ONE_OF_TOP_LEVEL = (("RequestedProcedureDescription", "RequestedProcedureCodeSequence"),)
ONE_OF_IN_STEP = (("ScheduledProcedureStepDescription", "ScheduledProtocolCodeSequence"),)
"""Type 1C pairs of Table K.6-1: each is required when the other is absent."""

CODE_SEQUENCES = ("RequestedProcedureCodeSequence", "ScheduledProtocolCodeSequence")
CODE_VALUES = ("CodeValue", "LongCodeValue", "URNCodeValue")
REFERENCE_SEQUENCES = ("ReferencedStudySequence", "ReferencedPatientSequence")
REFERENCE_KEYS = ("ReferencedSOPClassUID", "ReferencedSOPInstanceUID")

DATE_TIME_PAIRS = {
    "ScheduledProcedureStepStartDate": "ScheduledProcedureStepStartTime",
    "ScheduledProcedureStepEndDate": "ScheduledProcedureStepEndTime",
    "StudyDate": "StudyTime",
    "IssueDateOfImagingServiceRequest": "IssueTimeOfImagingServiceRequest",
}
"""Date and time keys matched together as one date-time range when both are ranges
(PS3.4 C.2.2.2.5)."""


class ItemStatus(str, Enum):
    """Where a scheduled procedure step stands. pacskit keeps it beside the item and
    answers it as Scheduled Procedure Step Status (0040,0020); items that are COMPLETED
    or DISCONTINUED are no longer answered. Modality Performed Procedure Step (PS3.4
    Annex F) moves an item on: IN PROGRESS makes it STARTED, COMPLETED and
    DISCONTINUED end it."""

    SCHEDULED = "SCHEDULED"
    STARTED = "STARTED"
    COMPLETED = "COMPLETED"
    DISCONTINUED = "DISCONTINUED"

    @property
    def is_final(self) -> bool:
        """Whether nothing can follow this status."""
        return self in (ItemStatus.COMPLETED, ItemStatus.DISCONTINUED)

    @property
    def is_answered(self) -> bool:
        """Whether a worklist query still returns an item in this status."""
        return not self.is_final

    def can_become(self, other: ItemStatus) -> bool:
        """Whether an item may go from this status to ``other``: forward only, never
        out of a final status."""
        order = [ItemStatus.SCHEDULED, ItemStatus.STARTED, ItemStatus.COMPLETED]
        if self.is_final:
            return False
        if other is ItemStatus.DISCONTINUED:
            return True
        return order.index(other) > order.index(self)

    @classmethod
    def parse(cls, text: str) -> ItemStatus:
        """A status from its name, any case.

        Raises:
            ValueError: not a status.
        """
        try:
            return cls(text.strip().upper())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown status {text!r}: use {names}") from None

    @classmethod
    def answered(cls) -> tuple[ItemStatus, ...]:
        """The statuses a worklist query returns."""
        return tuple(s for s in cls if s.is_answered)
