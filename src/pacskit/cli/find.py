"""``pacskit find``: C-FIND on a node, shown as a table, JSON or CSV."""

from __future__ import annotations

import csv
import sys
from typing import Annotated

import typer
from pydicom import Dataset
from rich.table import Table

from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import OutputFormat, err, out, print_check, print_json, state
from pacskit.cli.query_options import (
    AccessionOption,
    DateOption,
    DescriptionOption,
    KeysOption,
    LevelOption,
    LimitOption,
    ModalityOption,
    ModelOption,
    PatientIdOption,
    SeriesUidOption,
    SopUidOption,
    StudyUidOption,
    build_query,
)
from pacskit.query import Level, Query

COLUMNS = {
    Level.PATIENT: ["PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                    "NumberOfPatientRelatedStudies"],
    Level.STUDY: ["PatientID", "PatientName", "StudyDate", "StudyTime", "AccessionNumber",
                  "ModalitiesInStudy", "StudyDescription", "NumberOfStudyRelatedSeries",
                  "NumberOfStudyRelatedInstances", "StudyInstanceUID"],
    Level.SERIES: ["PatientID", "StudyInstanceUID", "SeriesNumber", "Modality", "SeriesDate",
                   "SeriesDescription", "NumberOfSeriesRelatedInstances", "SeriesInstanceUID"],
    Level.IMAGE: ["SeriesInstanceUID", "InstanceNumber", "SOPClassUID", "SOPInstanceUID"],
}
HEADERS = {
    "NumberOfPatientRelatedStudies": "Studies",
    "NumberOfStudyRelatedSeries": "Series",
    "NumberOfStudyRelatedInstances": "Instances",
    "NumberOfSeriesRelatedInstances": "Instances",
    "ModalitiesInStudy": "Modalities",
}


def find(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="Node name, dicom://AET@host:port, or a DICOMweb URL http(s)://host/path.")],
    level: LevelOption = "study",
    model: ModelOption = None,
    patient_id: PatientIdOption = None,
    study_uid: StudyUidOption = None,
    series_uid: SeriesUidOption = None,
    sop_uid: SopUidOption = None,
    accession: AccessionOption = None,
    date: DateOption = None,
    modality: ModalityOption = None,
    description: DescriptionOption = None,
    key: KeysOption = None,
    limit: LimitOption = None,
    output: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    called_ae: CalledAeOption = None,
) -> None:
    """Find patients, studies, series or images on a node (C-FIND, or QIDO-RS).

    Answers that fail a key the PACS ignored are dropped, and those it gave no value to
    check are kept; both are counted on standard error, never in the output.
    """
    query = build_query(level, model, patient_id, study_uid, series_uid, sop_uid, accession,
                        date, modality, description, key, limit)
    client = state(ctx).client()
    matches = client.find(target(client, node, called_ae), query)
    print_check(matches.check)
    columns = _columns(query, matches)
    if output is OutputFormat.json:
        print_json([m.to_json_dict() for m in matches])
    elif output is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([_text(m, c) for c in columns] for m in matches)
    elif not matches:
        err.print("No matches.")
    else:
        table = Table(caption=f"{len(matches)} {query.level.value.lower()} match"
                      + ("es" if len(matches) != 1 else ""))
        for column in columns:
            table.add_column(HEADERS.get(column, column), overflow="fold")
        for match in matches:
            table.add_row(*(_text(match, c) for c in columns))
        out.print(table)


def _columns(query: Query, matches: list[Dataset]) -> list[str]:
    columns = [c for c in COLUMNS[query.level]
               if c != "PatientName" or any(c in m for m in matches)]
    return columns + [k for k in (*query.match, *query.return_keys) if k not in columns]


def _text(dataset: Dataset, keyword: str) -> str:
    if keyword not in dataset:
        return ""
    value = dataset[keyword].value
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)
