"""``pacskit find``: C-FIND on a node, shown as a table, JSON or CSV."""

from __future__ import annotations

from typing import Annotated

import typer
from pydicom import Dataset

from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import MatchFormat, print_check, state
from pacskit.cli.deid_options import DeidentifyOption, DeidOptionOption
from pacskit.cli.item_lists import (
    FromFileKeyOption,
    FromFileOption,
    PatientIdsOption,
    raise_for_outcomes,
    run_each,
)
from pacskit.cli.match_output import (
    print_answers,
    sorted_matches,
)
from pacskit.cli.node_argument import AnyNode
from pacskit.cli.query_options import (
    AccessionOption,
    DateOption,
    DescriptionOption,
    KeysOption,
    LevelOption,
    LimitOption,
    ModalityOption,
    ModelOption,
    SeriesUidOption,
    SopUidOption,
    StudyUidOption,
    build_queries,
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


def find(
    ctx: typer.Context,
    node: AnyNode,
    level: LevelOption = "study",
    model: ModelOption = None,
    patient_id: PatientIdsOption = None,
    study_uid: StudyUidOption = None,
    series_uid: SeriesUidOption = None,
    sop_uid: SopUidOption = None,
    accession: AccessionOption = None,
    date: DateOption = None,
    modality: ModalityOption = None,
    description: DescriptionOption = None,
    key: KeysOption = None,
    limit: LimitOption = None,
    output: Annotated[MatchFormat, typer.Option(
        "--format", "-f",
        help="table (tab-separated lines when not a terminal), tsv, csv, json (by keyword) "
             "or dicom-json (PS3.18 F.2).")] = MatchFormat.table,
    called_ae: CalledAeOption = None,
    from_file: FromFileOption = None,
    from_file_key: FromFileKeyOption = None,
    deidentify: DeidentifyOption = False,
    deid_option: DeidOptionOption = None,
) -> None:
    """Find patients, studies, series or images on a node (C-FIND, or QIDO-RS).

    Answers that fail a key the PACS ignored are dropped, and those it gave no value to
    check are kept; both are counted on standard error, never in the output. Matches are
    sorted by date and time, then by number and UID.

    Examples:

      pacskit find pacs -p 12345 -d 20240101-

      pacskit find pacs -l series --study-uid 1.2.3 -k StationName -f csv

      pacskit find pacs --from-file ids.txt --from-file-key PatientID -k '(0008,1032)[0].CodeValue=CT01'
    """
    queries = build_queries(level, model, patient_id, study_uid, series_uid, sop_uid, accession,
                            date, modality, description, key, limit, from_file, from_file_key)
    client = state(ctx).client()
    peer = target(client, node, called_ae)

    def run(index: int) -> list[Dataset]:
        found = client.find(peer, queries[index][1], deidentify=deidentify, deid_options=deid_option or ())
        print_check(found.check)
        return list(found)

    outcomes = run_each([label for label, _ in queries], run)
    query = queries[0][1]
    matches = sorted_matches((m for o in outcomes for m in o.result or []), query.level)
    columns = _columns(query, matches)
    caption = f"{len(matches)} {query.level.value.lower()} match" + ("es" if len(matches) != 1 else "")
    print_answers(output, matches, matches, columns, query.level, caption, "No matches.")
    raise_for_outcomes(outcomes)


def _columns(query: Query, matches: list[Dataset]) -> list[str]:
    columns = [c for c in COLUMNS[query.level]
               if c != "PatientName" or any(c in m for m in matches)]
    return columns + [k for k in (*query.match, *query.return_keys) if k not in columns]
