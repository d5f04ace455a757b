"""``pacskit copy FROM TO``: what a query matches, from any place to any other."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

from pacskit.cancellation import Cancellation
from pacskit.cli.common import SummaryFormat, counted, err, out, print_json, rates, state
from pacskit.cli.deid_options import DeidentifyOption, DeidOptionOption
from pacskit.cli.get import Method
from pacskit.cli.node_argument import PLACE_HELP, complete_place
from pacskit.cli.progress import ProgressBar
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
from pacskit.layout import DEFAULT_LAYOUT
from pacskit.transfer import CopyResult

MAX_LISTED_FAILURES = 20
EXIT_INTERRUPTED = 130


def copy(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FROM", help=PLACE_HELP, autocompletion=complete_place)],
    destination: Annotated[str, typer.Argument(metavar="TO", help=PLACE_HELP, autocompletion=complete_place)],
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
    method: Annotated[Method, typer.Option("--method", help="From a DIMSE node: get (C-GET), move (C-MOVE to ourselves) or auto.")] = Method.get,
    wado_uri: Annotated[bool, typer.Option("--wado-uri", help="From a DICOMweb server: instance by instance by WADO-URI (/wado).")] = False,
    layout: Annotated[str, typer.Option("--layout", help="Path template, when TO is a folder.")] = DEFAULT_LAYOUT,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Into a folder: replace files already present.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be copied; copy nothing.")] = False,
    retries: Annotated[int | None, typer.Option("--retries", min=0, help="Tries again after a transient failure, with backoff.")] = None,
    output: Annotated[SummaryFormat, typer.Option("--format", "-f", help="Summary format (table or json).")] = SummaryFormat.table,
    deidentify: DeidentifyOption = False,
    deid_option: DeidOptionOption = None,
) -> None:
    """Copy what a query matches from FROM to TO: any two of a node, a DICOMweb server, the archive, a folder.

    What TO already holds (by SOP Instance UID) is not copied again.

    Examples:

      pacskit copy pacs archive --study-uid 1.2.3

      pacskit copy ./cd-import http://localhost:8042/dicom-web -l series --modality CT

      pacskit copy archive pacs2 -p 12345 --dry-run
    """
    query = build_query(level, model, patient_id, study_uid, series_uid, sop_uid, accession, date, modality,
                        description, key, limit)
    client = state(ctx).client()
    cancellation = Cancellation()
    with _CancelledByCtrlC(cancellation), ProgressBar("copying") as bar:
        result = client.copy(source, query, destination, layout=layout, overwrite=overwrite, method=method.value,
                             dry_run=dry_run, cancellation=cancellation, retries=retries, wado_uri=wado_uri,
                             deidentify=deidentify, deid_options=deid_option or (),
                             progress=lambda p: bar.update(p.received, p.total, p.bytes))
    if output is SummaryFormat.json:
        print_json(summary(result))
    else:
        print_summary(result)
    if result.cancelled:
        err.print(f"Interrupted: {result.copied} of {len(result.wanted)} instances copied; none half-written.",
                  markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    result.raise_for_status()


class _CancelledByCtrlC:
    """The first Ctrl-C cancels the copy (what is under way ends whole), a second one
    interrupts at once."""

    def __init__(self, cancellation: Cancellation) -> None:
        self.cancellation = cancellation
        self.previous: Any = None

    def _note(self, number: int, frame: object) -> None:
        if self.cancellation.cancelled:
            raise KeyboardInterrupt
        self.cancellation.cancel()

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._note)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def summary(result: CopyResult) -> dict[str, object]:
    """The JSON summary of a copy."""
    return result.model_dump(mode="json", exclude={"instances"})


def print_summary(result: CopyResult) -> None:
    """A human summary of a copy (with ``dry_run``, the SOP Instance UIDs that would go)."""
    if result.planned == 0:
        err.print(f"No matches at {result.source}.", markup=False)
        return
    if result.dry_run:
        for uid in result.wanted:
            out.print(uid, markup=False)
        out.print(f"Would copy {counted(len(result.wanted), 'instance')} from {result.source} to "
                  f"{result.destination}; {result.present} already there.", markup=False)
        return
    mb = result.bytes / 1e6
    skipped = f", {result.skipped_files} non-DICOM files skipped" if result.skipped_files else ""
    out.print(f"Copied {counted(result.copied, 'instance')} ({mb:.1f} MB) from {result.source} to "
              f"{result.destination} in {result.seconds:.1f} s ({rates(result.copied, result.bytes, result.seconds)}): "
              f"{result.present} already there, {len(result.failed)} failed{skipped}.", markup=False)
    for failure in result.failed[:MAX_LISTED_FAILURES]:
        err.print(f"  not copied: {failure.sop_instance_uid}: {failure.reason}", markup=False)
