"""``pacskit store``: send files and folders to a node (C-STORE)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import SummaryFormat, counted, err, out, print_json, rates, state
from pacskit.cli.item_lists import (
    FromFileOption,
    ListKey,
    Lists,
    item_summary,
    raise_for_outcomes,
    run_each,
)
from pacskit.cli.node_argument import complete_node
from pacskit.cli.progress import ProgressBar
from pacskit.models import StoreResult

MAX_LISTED_FAILURES = 20
FILTER_KEYS = frozenset({ListKey.PatientID, ListKey.StudyInstanceUID, ListKey.SeriesInstanceUID})
"""A file has one value of each: a list of them is one store per item."""


class StoreKey(str, Enum):
    """The filters ``--from-file`` can fill."""

    PatientID = "PatientID"
    StudyInstanceUID = "StudyInstanceUID"
    SeriesInstanceUID = "SeriesInstanceUID"


def store(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (searched recursively).")],
    to: Annotated[str, typer.Option(
        "--to", help="Node name, dicom://AET@host:port, or a DICOMweb URL http(s)://host/path.",
        autocompletion=complete_node)],
    patient_id: Annotated[list[str] | None, typer.Option("--patient-id", "-p", help="Only this patient's files; repeatable: one store per ID.")] = None,
    study_uid: Annotated[list[str] | None, typer.Option("--study-uid", help="Only this study's files; repeatable: one store per UID.")] = None,
    series_uid: Annotated[list[str] | None, typer.Option("--series-uid", help="Only this series' files; repeatable: one store per UID.")] = None,
    parallel: Annotated[int, typer.Option("--parallel", "-j", help="Associations in parallel.")] = 1,
    output: Annotated[SummaryFormat, typer.Option("--format", "-f", help="Summary format (table or json).")] = SummaryFormat.table,
    called_ae: CalledAeOption = None,
    from_file: FromFileOption = None,
    from_file_key: Annotated[StoreKey | None, typer.Option(
        "--from-file-key", help="The filter the lines of --from-file fill; default: StudyInstanceUID.")] = None,
) -> None:
    """Send DICOM files to a node (C-STORE, or STOW-RS to a DICOMweb URL).

    Examples:

      pacskit store ./incoming --to pacs

      pacskit store scans/ --to dicom://ORTHANC@127.0.0.1:4242 -j 4

      pacskit store scans/ --to pacs --from-file studies.txt -f json
    """
    lists = Lists.gather({ListKey.PatientID: patient_id, ListKey.StudyInstanceUID: study_uid,
                          ListKey.SeriesInstanceUID: series_uid}, from_file,
                         ListKey(from_file_key.value) if from_file_key else None, None, split=FILTER_KEYS)
    runs = lists.runs()
    client = state(ctx).client()
    peer = target(client, to, called_ae)

    def run(index: int) -> StoreResult:
        label, values = runs[index]
        with ProgressBar(label or "storing") as bar:
            result = client.store(paths, peer, patient_id=values.get(ListKey.PatientID),
                                  study_uid=values.get(ListKey.StudyInstanceUID),
                                  series_uid=values.get(ListKey.SeriesInstanceUID), parallel=parallel,
                                  progress=lambda p: bar.update(p.done, p.total, p.bytes))
        if output is not SummaryFormat.json:
            print_summary(result, label)
        return result

    outcomes = run_each([label for label, _ in runs], run)
    if output is SummaryFormat.json:
        # run_each raises a single run's error, so a single outcome has its result
        only = outcomes[0].result if len(outcomes) == 1 else None
        print_json(summary(only) if only is not None
                   else [item_summary(o, summary) for o in outcomes])
    raise_for_outcomes(outcomes, StoreResult.raise_for_status)


def summary(result: StoreResult) -> dict[str, object]:
    """The JSON summary of a store."""
    return result.model_dump(mode="json")


def print_summary(result: StoreResult, label: str | None = None) -> None:
    """A human summary of a store, after ``label:`` for an item of a list."""
    out.print(
        f"{label + ': ' if label else ''}Stored {counted(result.sent, 'file')} ({result.bytes / 1e6:.1f} MB) in {result.seconds:.1f} s "
        f"({rates(result.sent, result.bytes, result.seconds)}): {result.failed} failed, {result.warning} warnings, "
        f"{result.converted} converted; skipped {result.not_dicom} non-DICOM"
        + (f" and {result.filtered_out} filtered out" if result.filtered_out else "") + ".",
        markup=False,
    )
    for failure in result.failures[:MAX_LISTED_FAILURES]:
        err.print(f"  not stored: {failure.path}: {failure.reason}", markup=False)
    if len(result.failures) > MAX_LISTED_FAILURES:
        err.print(f"  ... and {len(result.failures) - MAX_LISTED_FAILURES} more (--format json lists all)")
