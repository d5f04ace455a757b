"""``pacskit store``: send files and folders to a node (C-STORE)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import SummaryFormat, counted, err, out, print_json, rates, state
from pacskit.cli.progress import ProgressBar
from pacskit.models import StoreResult

MAX_LISTED_FAILURES = 20


def store(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (searched recursively).")],
    to: Annotated[str, typer.Option("--to", help="Node name, dicom://AET@host:port, or a DICOMweb URL http(s)://host/path.")],
    patient_id: Annotated[str | None, typer.Option("--patient-id", "-p", help="Only this patient's files.")] = None,
    study_uid: Annotated[str | None, typer.Option("--study-uid", help="Only this study's files.")] = None,
    series_uid: Annotated[str | None, typer.Option("--series-uid", help="Only this series' files.")] = None,
    parallel: Annotated[int, typer.Option("--parallel", "-j", help="Associations in parallel.")] = 1,
    output: Annotated[SummaryFormat, typer.Option("--format", "-f", help="Summary format (table or json).")] = SummaryFormat.table,
    called_ae: CalledAeOption = None,
) -> None:
    """Send DICOM files to a node (C-STORE, or STOW-RS to a DICOMweb URL)."""
    client = state(ctx).client()
    with ProgressBar("storing") as bar:
        result = client.store(paths, target(client, to, called_ae), patient_id=patient_id, study_uid=study_uid,
                              series_uid=series_uid, parallel=parallel,
                              progress=lambda p: bar.update(p.done, p.total, p.bytes))
    if output is SummaryFormat.json:
        print_json(result.model_dump(mode="json"))
    else:
        print_summary(result)
    result.raise_for_status()


def print_summary(result: StoreResult) -> None:
    """A human summary of a store."""
    out.print(
        f"Stored {counted(result.sent, 'file')} ({result.bytes / 1e6:.1f} MB) in {result.seconds:.1f} s "
        f"({rates(result.sent, result.bytes, result.seconds)}): {result.failed} failed, {result.warning} warnings, "
        f"{result.converted} converted; skipped {result.not_dicom} non-DICOM"
        + (f" and {result.filtered_out} filtered out" if result.filtered_out else "") + ".",
        markup=False,
    )
    for failure in result.failures[:MAX_LISTED_FAILURES]:
        err.print(f"  not stored: {failure.path}: {failure.reason}", markup=False)
    if len(result.failures) > MAX_LISTED_FAILURES:
        err.print(f"  ... and {len(result.failures) - MAX_LISTED_FAILURES} more (--format json lists all)")
