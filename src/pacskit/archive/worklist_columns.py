"""The worklist table's indexed columns (:class:`~pacskit.archive.schema.WorklistItem`):
what an item puts in them, and the SQL condition a query makes of them.

The condition only ever narrows to a superset of the items that match (PS3.4 K.2.2,
C.2.2.2, as :class:`~pacskit.worklist.matching.Matcher` decides), because

* it is made only of keys whose matching is a plain comparison: a single value with no
  wildcard (equality, ``ScheduledStationAETitle`` as one of the item's values), a
  list of UIDs (one of them), a date or a date range (its bounds, the date part of a
  combined date-time range being no wider than the date range alone); universal
  matching, wildcards and lists make no condition;
* a column holds exactly what matching reads of its key, or the item is ``irregular``
  and always passes: several values, a value longer than its column, a date that is
  not YYYYMMDD (string order is then date order);
* an item's empty value fails every matching key in the Matcher as the empty column
  fails the comparison.
"""

from __future__ import annotations

import re
from typing import Any

from pydicom import Dataset
from sqlalchemy import CompoundSelect, Select, union_all

from pacskit.archive.schema import WorklistItem
from pacskit.worklist.matching import element_of, pattern_of, values_of
from pacskit.worklist.model import STEP_SEQUENCE

KEY_COLUMNS = {"patient_id": ("PatientID", 64, False), "accession": ("AccessionNumber", 64, False),
               "study_uid": ("StudyInstanceUID", 64, False)}
STEP_KEY_COLUMNS = {"modality": ("Modality", 16, True), "start_date": ("ScheduledProcedureStepStartDate", 8, True),
                    "start_time": ("ScheduledProcedureStepStartTime", 16, True)}
"""column: (keyword, width, whether a longer value is cut to it); start_time is never narrowed on."""
STATION_AETS_WIDTH = 255
DATE = re.compile(r"\d{8}")


def key_columns(item: Dataset) -> dict[str, Any]:
    """The indexed columns of an item: its first value of each key, and ``irregular``
    when a column cannot hold what matching reads (a key with several values, or too
    long for its column, a date that is not YYYYMMDD, a step sequence without exactly
    one item), which :func:`narrowing_of` then never excludes."""
    steps = element_of(item, STEP_SEQUENCE)
    step = steps.value[0] if steps is not None and steps.VR == "SQ" and steps.value else Dataset()
    irregular = steps is None or steps.VR != "SQ" or len(steps.value or []) != 1
    row: dict[str, Any] = {}
    for source, columns in ((item, KEY_COLUMNS), (step, STEP_KEY_COLUMNS)):
        for column, (keyword, width, cut) in columns.items():
            values = values_of(element_of(source, keyword))
            row[column] = (values[0][:width] if cut else values[0]) if values else ""
            if column != "start_time":
                irregular = irregular or len(values) > 1 or (bool(values) and len(values[0]) > width)
    irregular = irregular or (row["start_date"] != "" and not DATE.fullmatch(row["start_date"]))
    stations = "|" + "|".join(values_of(element_of(step, "ScheduledStationAETitle"))) + "|"
    if len(stations) > STATION_AETS_WIDTH:
        stations, irregular = "", True
    row["station_aets"] = stations
    row["requested_procedure_id"] = _text(item, "RequestedProcedureID")
    row["step_id"] = _text(step, "ScheduledProcedureStepID")
    row["irregular"] = irregular
    return row


def narrowing_of(identifier: Dataset, station: str | None) -> list[Any]:
    """The SQL conditions no true match fails, from the identifier's plain values, on
    the indexed columns of regular items (:func:`key_columns`; :func:`narrowed` keeps
    the irregular ones). A value with a wildcard, a list or universal matching (empty or ``*``) makes
    no condition."""
    conditions = []
    top = {e.keyword: pattern_of(e) for e in identifier if e.keyword and e.VR != "SQ"}
    steps = element_of(identifier, STEP_SEQUENCE)
    step_keys = steps.value[0] if steps is not None and steps.VR == "SQ" and steps.value else Dataset()
    step = {e.keyword: pattern_of(e) for e in step_keys if e.keyword and e.VR != "SQ"}
    for column, value in ((WorklistItem.patient_id, top.get("PatientID", "")),
                          (WorklistItem.accession, top.get("AccessionNumber", "")),
                          (WorklistItem.modality, step.get("Modality", ""))):
        if value and not any(c in value for c in "*?\\"):
            conditions.append(column == value)
    uids = top.get("StudyInstanceUID", "")
    if uids and uids != "*":
        conditions.append(WorklistItem.study_uid.in_([u.strip() for u in uids.split("\\") if u.strip()]))
    date = step.get("ScheduledProcedureStepStartDate", "")
    if date and date != "*":
        start, sep, end = date.partition("-")
        if not sep:
            conditions.append(WorklistItem.start_date == date)
        else:
            if start:
                conditions.append(WorklistItem.start_date >= start)
            if end:
                conditions.append(WorklistItem.start_date <= end)
    for ae in (step.get("ScheduledStationAETitle", ""), station or ""):
        if ae and not any(c in ae for c in "*?\\"):
            conditions.append(WorklistItem.station_aets.like(f"%|{_like_escaped(ae)}|%", escape="\\"))
    return conditions


def narrowed(statement: Select[*tuple[Any, ...]],
             conditions: list[Any]) -> Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]]:
    """``statement`` (a select of worklist items) narrowed by ``conditions`` on the
    regular items, the irregular ones all kept: the union of two selects, each of which
    an index serves (a single OR keeps SQLite from using any), ordered by scheduled date
    and time."""
    order = ("start_date", "start_time", "id")
    statement = statement.add_columns(WorklistItem.start_date, WorklistItem.start_time, WorklistItem.id)
    if not conditions:
        return statement.order_by(*order)
    return union_all(statement.where(WorklistItem.irregular == False, *conditions),  # noqa: E712
                     statement.where(WorklistItem.irregular == True)).order_by(*order)  # noqa: E712


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text(dataset: Dataset, keyword: str) -> str:
    values = values_of(element_of(dataset, keyword))
    return values[0] if values else ""

