"""The attribute requirements of the Modality Performed Procedure Step SOP Class, as data:
PS3.4 Table F.7.2-1 ("Modality Performed Procedure Step SOP Class N-CREATE, N-SET and
Final State Attributes").

Source: the text of PS3.4 Annex F as published in 2020 (the Radiation Dose Module already
retired, PS3.3-2017c). Checked against dcm4che's ``mppsscp`` IODs
(``mpps-ncreate-iod.xml``, ``mpps-nset-iod.xml``), which give every row below the same
types. Code sequence items (Code Value and the rest, Tables F.7.2-1a to -1e) and the 1C
rows of the issuer sequences are not checked.

Each :class:`Requirement` is one row: its path (keywords; a nested row names its
sequences first), the SCP's N-CREATE type, the N-SET type (``None``: not allowed) and the
Final State type — which applies when the status is set to COMPLETED or DISCONTINUED,
and is given only where it differs from the N-CREATE type (Note 1).
"""

from __future__ import annotations

from dataclasses import dataclass

EDITION = "PS3.4 Table F.7.2-1 (DICOM 2020 text)"


@dataclass(frozen=True)
class Requirement:
    """One row of Table F.7.2-1 (see the module docstring)."""

    path: tuple[str, ...]
    create: str
    set: str | None = None
    final: str | None = None

    @property
    def keyword(self) -> str:
        return self.path[-1]


def _rows(*rows: tuple[str, str, str | None, str | None]) -> tuple[Requirement, ...]:
    return tuple(Requirement(tuple(path.split(".")), create, set_, final) for path, create, set_, final in rows)


SSAS = "ScheduledStepAttributesSequence"
SERIES = "PerformedSeriesSequence"

TABLE: tuple[Requirement, ...] = _rows(
    # Performed Procedure Step Relationship
    (SSAS, "1", None, None),
    (f"{SSAS}.StudyInstanceUID", "1", None, None),
    (f"{SSAS}.ReferencedStudySequence", "2", None, None),
    (f"{SSAS}.ReferencedStudySequence.ReferencedSOPClassUID", "1", None, None),
    (f"{SSAS}.ReferencedStudySequence.ReferencedSOPInstanceUID", "1", None, None),
    (f"{SSAS}.AccessionNumber", "2", None, None),
    (f"{SSAS}.IssuerOfAccessionNumberSequence", "3", None, None),
    (f"{SSAS}.PlacerOrderNumberImagingServiceRequest", "3", None, None),
    (f"{SSAS}.OrderPlacerIdentifierSequence", "3", None, None),
    (f"{SSAS}.FillerOrderNumberImagingServiceRequest", "3", None, None),
    (f"{SSAS}.OrderFillerIdentifierSequence", "3", None, None),
    (f"{SSAS}.RequestedProcedureID", "2", None, None),
    (f"{SSAS}.RequestedProcedureCodeSequence", "3", None, None),
    (f"{SSAS}.RequestedProcedureDescription", "2", None, None),
    (f"{SSAS}.ScheduledProcedureStepID", "2", None, None),
    (f"{SSAS}.ScheduledProcedureStepDescription", "2", None, None),
    (f"{SSAS}.ScheduledProtocolCodeSequence", "2", None, None),
    ("PatientName", "2", None, None),
    ("PatientID", "2", None, None),
    ("IssuerOfPatientID", "3", None, None),
    ("IssuerOfPatientIDQualifiersSequence", "3", None, None),
    ("OtherPatientIDsSequence", "3", None, None),
    ("PatientBirthDate", "2", None, None),
    ("PatientSex", "2", None, None),
    ("ReferencedPatientSequence", "2", None, None),
    ("ReferencedPatientSequence.ReferencedSOPClassUID", "1", None, None),
    ("ReferencedPatientSequence.ReferencedSOPInstanceUID", "1", None, None),
    ("AdmissionID", "3", None, None),
    ("IssuerOfAdmissionIDSequence", "3", None, None),
    ("ServiceEpisodeID", "3", None, None),
    ("IssuerOfServiceEpisodeIDSequence", "3", None, None),
    ("ServiceEpisodeDescription", "3", None, None),
    # Performed Procedure Step Information
    ("PerformedProcedureStepID", "1", None, None),
    ("PerformedStationAETitle", "1", None, None),
    ("PerformedStationName", "2", None, None),
    ("PerformedLocation", "2", None, None),
    ("PerformedProcedureStepStartDate", "1", None, None),
    ("PerformedProcedureStepStartTime", "1", None, None),
    ("PerformedProcedureStepStatus", "1", "1", None),
    ("PerformedProcedureStepDescription", "2", "2", None),
    ("PerformedProcedureTypeDescription", "2", "2", None),
    ("ProcedureCodeSequence", "2", "2", None),
    ("ReasonForPerformedProcedureCodeSequence", "3", "3", None),
    ("PerformedProcedureStepEndDate", "2", "1", "1"),
    ("PerformedProcedureStepEndTime", "2", "1", "1"),
    ("CommentsOnThePerformedProcedureStep", "3", "3", None),
    ("PerformedProcedureStepDiscontinuationReasonCodeSequence", "3", "3", None),
    # Image Acquisition Results
    ("Modality", "1", None, None),
    ("StudyID", "2", None, None),
    ("PerformedProtocolCodeSequence", "2", "2", None),
    (SERIES, "2", "1", "1"),
    (f"{SERIES}.PerformingPhysicianName", "2", "2", None),
    (f"{SERIES}.ProtocolName", "1", "1", None),
    (f"{SERIES}.OperatorsName", "2", "2", None),
    (f"{SERIES}.SeriesInstanceUID", "1", "1", None),
    (f"{SERIES}.SeriesDescription", "2", "2", None),
    (f"{SERIES}.RetrieveAETitle", "2", "2", None),
    (f"{SERIES}.ArchiveRequested", "3", "3", None),
    (f"{SERIES}.ReferencedImageSequence", "2", "2", None),
    (f"{SERIES}.ReferencedImageSequence.ReferencedSOPClassUID", "1", "1", None),
    (f"{SERIES}.ReferencedImageSequence.ReferencedSOPInstanceUID", "1", "1", None),
    (f"{SERIES}.ReferencedNonImageCompositeSOPInstanceSequence", "2", "2", None),
    (f"{SERIES}.ReferencedNonImageCompositeSOPInstanceSequence.ReferencedSOPClassUID", "1", "1", None),
    (f"{SERIES}.ReferencedNonImageCompositeSOPInstanceSequence.ReferencedSOPInstanceUID", "1", "1", None),
)
"""Every row pacskit checks, in the Standard's order."""

TOP_LEVEL: tuple[Requirement, ...] = tuple(r for r in TABLE if len(r.path) == 1)

NOT_SETTABLE: frozenset[str] = frozenset(r.keyword for r in TOP_LEVEL if r.set is None)
"""Top-level attributes an N-SET may not carry ("Not allowed")."""


def nested(parent: tuple[str, ...]) -> tuple[Requirement, ...]:
    """The rows directly inside the sequence at ``parent``."""
    return tuple(r for r in TABLE if len(r.path) == len(parent) + 1 and r.path[:-1] == parent)
