"""The order in which the index returns matches, when one is asked for.

PS3.18's Search Transaction has no ordering parameter and PS3.4's C-FIND none either: an
SCP returns matches in an order of its own (this index: the order rows were indexed).
A study list that shows a page at a time must sort on the server, or each page is only
sorted within itself. pacskit's QIDO-RS takes dcm4chee-arc's ``orderby`` extension for
that (``orderby=-StudyDate,-StudyTime``, ``-`` for descending), answered here.

A key is sorted by an indexed column where the index keeps one (dates, times, accession,
patient ID, modalities, UIDs, the related-instance counts) and otherwise by the value in
the level's DICOM JSON (PS3.18 F.2): the first value, a person name by its alphabetic
group, compared in lower case (a description typed in lower case sorts among the
others). Columns compare as the database compares text; an empty value comes first
ascending and last descending, on SQLite and PostgreSQL alike. Keys of
numeric VRs the index holds only in JSON cannot be ordered (their JSON values are not
reliably numbers). The row id ends every order, in the direction of the last key (an
index on the keys then serves the whole order: newest first by date and time is read
backwards off ``ix_study_date_time``), so paging with ``offset`` is stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from sqlalchemy import JSON, cast, func, type_coerce

from pacskit.archive.schema import Instance, Patient, Series, Study
from pacskit.errors import QueryError
from pacskit.query import LEVEL_KEYS, LEVELS, Level

Order = Sequence[tuple[str, bool]]
"""(keyword, descending) pairs, the most significant first."""

_COLUMNS: dict[str, Any] = {
    "PatientID": Patient.patient_id,
    "NumberOfPatientRelatedStudies": Patient.studies,
    "NumberOfPatientRelatedSeries": Patient.series,
    "NumberOfPatientRelatedInstances": Patient.instances,
    "StudyInstanceUID": Study.study_uid,
    "StudyDate": Study.study_date,
    "StudyTime": Study.study_time,
    "AccessionNumber": Study.accession,
    "ModalitiesInStudy": Study.modalities,
    "NumberOfStudyRelatedSeries": Study.series,
    "NumberOfStudyRelatedInstances": Study.instances,
    "SeriesInstanceUID": Series.series_uid,
    "Modality": Series.modality,
    "NumberOfSeriesRelatedInstances": Series.instances,
    "SOPInstanceUID": Instance.sop_uid,
    "SOPClassUID": Instance.sop_class_uid,
}
_JSON_COLUMNS = {Level.PATIENT: Patient.attributes, Level.STUDY: Study.attributes,
                 Level.SERIES: Series.attributes, Level.IMAGE: Instance.attributes}
_NUMERIC_VRS = frozenset({"IS", "DS", "US", "UL", "SS", "SL", "FL", "FD", "UV", "SV"})
_UNORDERED_VRS = frozenset({"SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"})


def key_level(keyword: str) -> Level | None:
    """The level whose attributes hold ``keyword``, None if no level does."""
    return next((level for level in LEVELS if keyword in LEVEL_KEYS[level]), None)


def check_order(level: Level, order: Order) -> None:
    """Refuse an order this index cannot sort a search at ``level`` by.

    Raises:
        QueryError: a key of a level below ``level`` or of no level, given twice, or of a
            VR that has no order here.
    """
    seen: set[str] = set()
    for keyword, _ in order:
        owner = key_level(keyword)
        if owner is None or LEVELS.index(owner) > LEVELS.index(level):
            raise QueryError(f"orderby: {keyword} is not an attribute of the {level.value.lower()} level")
        if keyword in seen:
            raise QueryError(f"orderby: {keyword} is given twice")
        seen.add(keyword)
        if keyword not in _COLUMNS:
            vr = dictionary_VR(keyword)
            if vr in _NUMERIC_VRS or vr in _UNORDERED_VRS:
                raise QueryError(f"orderby: {keyword} ({vr}) cannot be sorted by this server")


def order_clauses(order: Order, row_id: Any, *, sqlite: bool) -> list[Any]:
    """The ORDER BY clauses of ``order`` (checked by :func:`check_order`), ending with
    ``row_id``."""
    clauses = []
    for keyword, descending in order:
        column = _COLUMNS.get(keyword)
        if column is not None:
            clauses.append(column.desc() if descending else column.asc())
        else:
            value = _json_value(keyword, sqlite)
            clauses.append(value.desc().nulls_last() if descending else value.asc().nulls_first())
    clauses.append(row_id.desc() if order and order[-1][1] else row_id)
    return clauses


def _json_value(keyword: str, sqlite: bool) -> Any:
    owner = key_level(keyword)
    assert owner is not None
    column = _JSON_COLUMNS[owner]
    document = type_coerce(column, JSON) if sqlite else cast(column, JSON)
    path: tuple[str | int, ...] = (f"{tag_for_keyword(keyword):08X}", "Value", 0)
    if dictionary_VR(keyword) == "PN":
        path = (*path, "Alphabetic")
    return func.lower(document[path].as_string())
