"""The query options shared by ``find``, ``get`` and ``move``."""

from __future__ import annotations

from typing import Annotated

import typer

from pacskit.cli.common import err
from pacskit.cli.item_lists import ListKey, Lists
from pacskit.query import Query

LevelOption = Annotated[str, typer.Option("--level", "-l", help="patient, study, series or image.")]
ModelOption = Annotated[str | None, typer.Option("--model", "-m", help="Information model: study or patient (root); patient at the patient level, else study.")]
PatientIdOption = Annotated[str | None, typer.Option("--patient-id", "-p", help="PatientID to match.")]
StudyUidOption = Annotated[list[str] | None, typer.Option("--study-uid", help="StudyInstanceUID; repeatable, or several separated by commas or backslashes (list matching).")]
SeriesUidOption = Annotated[list[str] | None, typer.Option("--series-uid", help="SeriesInstanceUID; repeatable, or several separated by commas or backslashes (list matching).")]
SopUidOption = Annotated[list[str] | None, typer.Option("--sop-uid", help="SOPInstanceUID; repeatable, or several separated by commas or backslashes (list matching).")]
AccessionOption = Annotated[str | None, typer.Option("--accession", "-a", help="AccessionNumber.")]
DateOption = Annotated[str | None, typer.Option("--date", "-d", help="StudyDate or range: 20240101-20240131, 20240101-, -20231231.")]
ModalityOption = Annotated[str | None, typer.Option("--modality", help="Modality (ModalitiesInStudy at study level).")]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="Study or series description; * and ? are wildcards.")]
KeysOption = Annotated[list[str] | None, typer.Option("--key", "-k", help="Keyword=value to match, or Keyword to return: any dictionary keyword or tag (0008,1010); repeatable.")]
LimitOption = Annotated[int | None, typer.Option("--limit", help="Stop after N matches (C-CANCEL).")]


def build_query(level: str, model: str | None, patient_id: str | None, study_uid: list[str] | None,
                series_uid: list[str] | None, sop_uid: list[str] | None, accession: str | None,
                date: str | None, modality: str | None, description: str | None,
                keys: list[str] | None, limit: int | None) -> Query:
    """The :class:`Query` the options describe; a UID option given several times is one
    list of UIDs (PS3.4 C.2.2.2.2).

    Raises:
        QueryError: an option is invalid for the level.
    """
    query = _quiet_query(level, model, patient_id, study_uid, series_uid, sop_uid, accession, date,
                         modality, description, keys, limit)
    unusual = query.nonstandard_keys()
    if unusual:
        err.print(f"pacskit: warning: {', '.join(unusual)} {'is not a standard key' if len(unusual) == 1 else 'are not standard keys'} "
                  f"of the {query.level.value} level (PS3.4 C.6): sent, but the PACS may ignore "
                  f"{'it' if len(unusual) == 1 else 'them'}", markup=False)
    return query


def build_queries(level: str, model: str | None, patient_ids: list[str] | None, study_uid: list[str] | None,
                  series_uid: list[str] | None, sop_uid: list[str] | None, accession: str | None,
                  date: str | None, modality: str | None, description: str | None,
                  keys: list[str] | None, limit: int | None, from_file: str | None,
                  from_file_key: ListKey | None) -> list[tuple[str | None, Query]]:
    """The queries the options describe, each with its label (``None`` for a single query):
    UIDs from the options and ``from_file`` make one list match (PS3.4 C.2.2.2.2); several
    PatientIDs or AccessionNumbers, which cannot, make one query each.

    Raises:
        QueryError: an option is invalid for the level.
        InputError, UsageError: ``from_file`` cannot be read, or does not fit the options.
    """
    lists = Lists.gather({ListKey.PatientID: patient_ids, ListKey.StudyInstanceUID: study_uid,
                          ListKey.SeriesInstanceUID: series_uid, ListKey.SOPInstanceUID: sop_uid,
                          ListKey.AccessionNumber: accession}, from_file, from_file_key, level)
    queries = []
    for index, (label, values) in enumerate(lists.runs()):
        build = build_query if index == 0 else _quiet_query
        queries.append((label, build(
            level, model, values.get(ListKey.PatientID), _listed(values.get(ListKey.StudyInstanceUID)),
            _listed(values.get(ListKey.SeriesInstanceUID)), _listed(values.get(ListKey.SOPInstanceUID)),
            values.get(ListKey.AccessionNumber), date, modality, description, keys, limit)))
    return queries


def _listed(value: str | None) -> list[str] | None:
    return [value] if value else None


def _quiet_query(level: str, model: str | None, patient_id: str | None, study_uid: list[str] | None,
                 series_uid: list[str] | None, sop_uid: list[str] | None, accession: str | None,
                 date: str | None, modality: str | None, description: str | None,
                 keys: list[str] | None, limit: int | None) -> Query:
    return Query.build(
        level, model=model, patient_id=patient_id, study_uid=uid_list(study_uid),
        series_uid=uid_list(series_uid), sop_instance_uid=uid_list(sop_uid), accession=accession, date=date,
        modality=modality, description=description, keys=keys or [], limit=limit,
    )


def uid_list(values: list[str] | None) -> str | None:
    """The UIDs of a repeated option as one comma-separated list, ``None`` if not given."""
    return ",".join(values) if values else None
