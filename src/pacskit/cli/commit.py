"""``pacskit commit``: ask a node to commit to keeping instances (Storage Commitment Push
Model, PS3.4 J.3), and print its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydicom.uid import UID
from rich.table import Table
from rich.text import Text

from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import SummaryFormat, counted, err, out, print_json, state
from pacskit.cli.node_argument import DimseNode
from pacskit.cli.query_options import (
    AccessionOption,
    DateOption,
    KeysOption,
    ModalityOption,
    ModelOption,
    PatientIdOption,
    SeriesUidOption,
    SopUidOption,
    StudyUidOption,
    build_query,
)
from pacskit.commitment import CommitmentResult, Reference
from pacskit.errors import InputError, UsageError
from pacskit.query import Query
from pacskit.scan import scan


def commit(
    ctx: typer.Context,
    node: DimseNode,
    files: Annotated[list[Path] | None, typer.Argument(help="DICOM files or folders: commit these instances.")] = None,
    model: ModelOption = None,
    patient_id: PatientIdOption = None,
    study_uid: StudyUidOption = None,
    series_uid: SeriesUidOption = None,
    sop_uid: SopUidOption = None,
    accession: AccessionOption = None,
    date: DateOption = None,
    modality: ModalityOption = None,
    key: KeysOption = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the report.")] = 60.0,
    output: Annotated[SummaryFormat, typer.Option("--format", "-f", help="table or json.")] = SummaryFormat.table,
    called_ae: CalledAeOption = None,
) -> None:
    """Ask a node to commit to keeping instances (Storage Commitment): those of FILES, or
    those the options match on the node (C-FIND). The report comes on the same
    association or on a new one to our AE title and port, which the node must know.

    Examples:

      pacskit commit pacs ./sent

      pacskit commit pacs --study-uid 1.2.3 --timeout 120 -f json
    """
    selection = [patient_id, study_uid, series_uid, sop_uid, accession, date, modality, key]
    client = state(ctx).client()
    if files:
        if any(selection):
            raise UsageError("give files or query options, not both")
        instances: Query | list[Reference] = _references(files)
    elif any(selection):
        instances = build_query("image", model, patient_id, study_uid, series_uid, sop_uid, accession, date,
                                modality, None, key, None)
    else:
        raise UsageError("nothing to commit: give files, or --study-uid, --series-uid, --sop-uid or -k keys")
    result = client.commit(target(client, node, called_ae), instances, timeout=timeout)
    if output is SummaryFormat.json:
        print_json(summary(result))
    else:
        print_report(result)
    result.raise_for_status()


def _references(paths: list[Path]) -> list[Reference]:
    found = scan(paths)
    if not found.files:
        raise InputError(f"no DICOM file among {counted(len(paths), 'path')}")
    return list(dict.fromkeys(Reference(f.sop_class_uid, f.sop_instance_uid) for f in found.files))


def summary(result: CommitmentResult) -> dict[str, object]:
    """The JSON summary of a commitment."""
    report = result.report
    return {
        "transaction_uid": result.transaction_uid,
        "requested": len(result.requested),
        "committed": [{"sop_class_uid": r.sop_class_uid, "sop_instance_uid": r.sop_instance_uid}
                      for r in report.committed],
        "failed": [{"sop_class_uid": f.reference.sop_class_uid, "sop_instance_uid": f.reference.sop_instance_uid,
                    "failure_reason": f.reason, "reason": f.reason_text} for f in report.failed],
        "same_association": result.same_association,
        "seconds": round(result.seconds, 3),
    }


def print_report(result: CommitmentResult) -> None:
    """A table of the instances and whether each was committed, then one line of totals."""
    report = result.report
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("SOPInstanceUID", "SOP class", "result"):
        table.add_column(column, no_wrap=True)
    for reference in report.committed:
        table.add_row(Text(reference.sop_instance_uid), Text(_class_name(reference.sop_class_uid)), Text("committed"))
    for failure in report.failed:
        table.add_row(Text(failure.reference.sop_instance_uid), Text(_class_name(failure.reference.sop_class_uid)),
                      Text(f"failed: {failure.reason_text}"))
    out.print(table)
    how = "on the request's association" if result.same_association else "on a new association"
    line = (f"Committed {len(report.committed)} of {counted(len(result.requested), 'instance')} "
            f"in {result.seconds:.1f} s (report {how}, transaction {result.transaction_uid})")
    (err if report.failed else out).print(line + (f"; {len(report.failed)} failed." if report.failed else "."))


def _class_name(uid: str) -> str:
    name = UID(uid).name
    return name if name and name != uid else uid
