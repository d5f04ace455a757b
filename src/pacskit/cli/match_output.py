"""How ``pacskit find`` shows its matches: sorted, as a table that fits the terminal,
tab-separated lines in a pipe, CSV, keyword JSON or the DICOM JSON model."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pacskit.cli.common import MatchFormat, err, out, print_json
from pacskit.query import Level

UID_COLUMNS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID")
READABLE_ORDER = (
    "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime", "ScheduledStationAETitle",
    "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "Modality", "ModalitiesInStudy",
    "SeriesNumber", "InstanceNumber", "StudyDescription", "SeriesDescription", "PatientID",
    "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
    "NumberOfPatientRelatedStudies", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances",
    "ScheduledProcedureStepDescription", "ScheduledProcedureStepStatus",
)
SORT_KEYS = {
    Level.PATIENT: ("PatientID",),
    Level.STUDY: ("StudyDate", "StudyTime", "StudyInstanceUID"),
    Level.SERIES: ("SeriesDate", "SeriesTime", "SeriesNumber", "SeriesInstanceUID"),
    Level.IMAGE: ("InstanceNumber", "SOPInstanceUID"),
}
LEVEL_UID = {
    Level.PATIENT: None,
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}
FIRST_CHOSEN = ("ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime",
                "ScheduledStationAETitle", "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "Modality",
                "ModalitiesInStudy", "SeriesNumber", "InstanceNumber")
NUMERIC_SORT = {"SeriesNumber", "InstanceNumber"}
HEADERS = {
    "NumberOfPatientRelatedStudies": "Studies",
    "NumberOfStudyRelatedSeries": "Series",
    "NumberOfStudyRelatedInstances": "Instances",
    "NumberOfSeriesRelatedInstances": "Instances",
    "ModalitiesInStudy": "Modalities",
    "StudyDate": "Date", "SeriesDate": "Date",
    "StudyTime": "Time", "SeriesTime": "Time",
    "StudyDescription": "Description", "SeriesDescription": "Description",
    "AccessionNumber": "Accession",
    "SeriesNumber": "Number", "InstanceNumber": "Number",
    "ScheduledProcedureStepStartDate": "Date", "ScheduledProcedureStepStartTime": "Time",
    "ScheduledStationAETitle": "Station AE", "ScheduledProcedureStepDescription": "Procedure",
    "ScheduledProcedureStepStatus": "Status",
}
INTEGER_VRS = {"IS", "SL", "SS", "SV", "UL", "US", "UV"}
FLOAT_VRS = {"DS", "FD", "FL"}
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
TABLE_BOX = box.SIMPLE_HEAD


def sorted_matches(matches: Iterable[Dataset], level: Level) -> list[Dataset]:
    """``matches`` in date and time order, then by number and UID (the level's own keys)."""
    keys = SORT_KEYS[level]
    return sorted(matches, key=lambda m: tuple(_sort_value(m, k) for k in keys))


def _sort_value(dataset: Dataset, keyword: str) -> tuple[int, float | str]:
    text = cell_text(dataset, keyword)
    if keyword in NUMERIC_SORT:
        try:
            return (0, float(text))
        except ValueError:
            return (1, text)
    return (0, text) if text else (1, "")


def ordered_columns(columns: Sequence[str]) -> list[str]:
    """``columns`` with the readable ones first and the UIDs last."""
    rank = {k: i for i, k in enumerate(READABLE_ORDER)}
    readable = [c for c in columns if c not in UID_COLUMNS]
    readable.sort(key=lambda c: rank.get(c, len(rank)))
    return readable + [c for c in UID_COLUMNS if c in columns]


def cell_text(dataset: Dataset, keyword: str) -> str:
    """The value of ``keyword`` as text, values of a multi-valued element joined by ``\\``."""
    if keyword not in dataset:
        return ""
    value = dataset[keyword].value
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value)


def _readable(keyword: str, text: str) -> str:
    if keyword.endswith("Date") and len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    if keyword.endswith("Time") and len(text) >= 4 and text[:4].isdigit():
        return f"{text[:2]}:{text[2:4]}"
    return text.replace("\\", ", ")


def print_table(console: Console, matches: Sequence[Dataset], columns: Sequence[str],
                level: Level, caption: str) -> None:
    """``matches`` as a table no wider than the terminal, every value whole.

    Columns are chosen while they fit — date, time, modality and numbers first, then the
    level's own UID, then the others in :func:`ordered_columns` order — and shown in
    :func:`ordered_columns` order (UIDs last); those left out are counted below it.
    """
    columns = ordered_columns(columns)
    cells = {c: [_readable(c, cell_text(m, c)) for m in matches] for c in columns}
    widths = {c: max(len(HEADERS.get(c, c)), *(len(v) for v in cells[c])) for c in columns}
    first = [c for c in columns if c in FIRST_CHOSEN] + [c for c in columns if c == LEVEL_UID[level]]
    chosen = _fitting(first + [c for c in columns if c not in first], widths, console.width)
    shown = [c for c in columns if c in chosen]
    hidden = len(columns) - len(shown)
    table = Table(box=TABLE_BOX, caption=caption, caption_justify="left", show_edge=False,
                  pad_edge=False, padding=(0, 1, 0, 0))
    for column in shown:
        table.add_column(HEADERS.get(column, column), no_wrap=True, overflow="ignore",
                         min_width=widths[column],
                         justify="right" if column.startswith("NumberOf") else "left")
    for row in range(len(matches)):
        table.add_row(*(Text(cells[c][row]) for c in shown))
    console.print(table, crop=False)
    if hidden:
        console.print(f"({hidden} column{'s' if hidden != 1 else ''} hidden; "
                      "--format csv or tsv shows all)", markup=False, highlight=False)


def _fitting(columns: Sequence[str], widths: dict[str, int], width: int) -> list[str]:
    """The columns, in order, that fit ``width``: each costs its width and, after the
    first, a gap of 2 (padding and divider)."""
    shown: list[str] = []
    used = 0
    for column in columns:
        cost = widths[column] + (2 if shown else 0)
        if used + cost <= width:
            shown.append(column)
            used += cost
    return shown


def write_delimited(matches: Iterable[Dataset], columns: Sequence[str], delimiter: str) -> None:
    """A header line of keywords, then one line per match, lines ending in LF."""
    writer = csv.writer(sys.stdout, delimiter=delimiter, lineterminator="\n",
                        quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    writer.writerows([cell_text(m, c) for c in columns] for m in matches)


def write_tsv(matches: Iterable[Dataset], columns: Sequence[str]) -> None:
    """Tab-separated lines, header first; tabs and line breaks inside values become spaces."""
    def clean(text: str) -> str:
        return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    sys.stdout.write("\t".join(columns) + "\n")
    for match in matches:
        sys.stdout.write("\t".join(clean(cell_text(match, c)) for c in columns) + "\n")


def keyword_json(dataset: Dataset) -> dict[str, Any]:
    """``dataset`` as ``{keyword: value}``: numbers for numeric VRs, lists for multiple
    values, a list of objects for a sequence; private and binary elements left out (the
    DICOM JSON model of PS3.18 F.2 keeps them: ``--format dicom-json``)."""
    data: dict[str, Any] = {}
    for element in dataset:
        if element.tag.is_private or not element.keyword or element.VR in BINARY_VRS:
            continue
        data[element.keyword] = _json_value(element)
    return data


def _json_value(element: DataElement) -> Any:
    if element.VR == "SQ":
        return [keyword_json(item) for item in element.value]
    value = element.value
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        return [_scalar(element.VR, v) for v in value]
    return _scalar(element.VR, value)


def _scalar(vr: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if vr in INTEGER_VRS:
        return int(value)
    if vr in FLOAT_VRS:
        return float(value)
    return str(value)


def print_answers(output: MatchFormat, answers: Sequence[Dataset], rows: Sequence[Dataset],
                  columns: Sequence[str], level: Level, caption: str, nothing: str) -> None:
    """``answers`` as JSON (by keyword, or the DICOM JSON model), or their ``rows`` as CSV,
    TSV (also whenever standard output is not a terminal) or a table; ``nothing`` on
    standard error when there are no answers."""
    if output is MatchFormat.json:
        print_json([keyword_json(a) for a in answers])
    elif output is MatchFormat.dicom_json:
        print_json([a.to_json_dict() for a in answers])
    elif output is MatchFormat.csv:
        write_delimited(rows, columns, ",")
    elif output is MatchFormat.tsv or not out.is_terminal:
        write_tsv(rows, columns)
    elif rows:
        print_table(out, rows, columns, level, caption)
    if not answers:
        err.print(nothing)
