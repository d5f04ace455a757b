"""``pacskit get``: retrieve instances into a folder by C-GET or C-MOVE to ourselves (or
WADO-RS, or from the archive or a folder), or send each on to another node as it arrives."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import (
    SummaryFormat,
    counted,
    err,
    out,
    print_check,
    print_json,
    rates,
    state,
)
from pacskit.cli.deid_options import DeidentifyOption, DeidOptionOption
from pacskit.cli.item_lists import (
    FromFileKeyOption,
    FromFileOption,
    PatientIdsOption,
    item_summary,
    raise_for_outcomes,
    run_each,
)
from pacskit.cli.node_argument import AnyNode, complete_node
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
    SeriesUidOption,
    SopUidOption,
    StudyUidOption,
    build_queries,
)
from pacskit.errors import UsageError
from pacskit.layout import DEFAULT_LAYOUT
from pacskit.models import RetrieveResult

MAX_LISTED_FAILURES = 20


class Method(str, Enum):
    get = "get"
    move = "move"
    auto = "auto"


def get(
    ctx: typer.Context,
    node: AnyNode,
    output_dir: Annotated[Path | None, typer.Option("--output", "-o", help="Folder to write into.")] = None,
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
    method: Annotated[Method, typer.Option("--method", help="get: C-GET; move: C-MOVE to ourselves; auto: C-GET, else C-MOVE.")] = Method.get,
    layout: Annotated[str, typer.Option("--layout", help="Path template under the output folder.")] = DEFAULT_LAYOUT,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace files already present.")] = False,
    output: Annotated[SummaryFormat, typer.Option("--format", "-f", help="Summary format (table or json).")] = SummaryFormat.table,
    wado_uri: Annotated[bool, typer.Option("--wado-uri", help="From a DICOMweb node: instance by instance by WADO-URI (/wado).")] = False,
    called_ae: CalledAeOption = None,
    from_file: FromFileOption = None,
    from_file_key: FromFileKeyOption = None,
    deidentify: DeidentifyOption = False,
    deid_option: DeidOptionOption = None,
    forward_to: Annotated[str | None, typer.Option(
        "--forward-to", metavar="NODE", autocompletion=complete_node,
        help="Send each instance on to this node or DICOMweb URL as it arrives (C-STORE on one association, "
             "or STOW-RS) instead of writing it.")] = None,
) -> None:
    """Retrieve matching instances into a folder (C-GET, C-MOVE to pacskit itself, or WADO-RS).

    With --forward-to instead of -o, each instance is sent on to another node as it arrives.

    Examples:

      pacskit get pacs --study-uid 1.2.3 -o studies

      pacskit get pacs -p 12345 -p 67890 -l patient -o out --method move

      pacskit get pacs --study-uid 1.2.3 --forward-to research --deidentify
    """
    if (output_dir is None) == (forward_to is None):
        raise UsageError("give a folder to write into (-o DIR) or a node to send on to (--forward-to NODE)")
    queries = build_queries(level, model, patient_id, study_uid, series_uid, sop_uid, accession,
                            date, modality, description, key, limit, from_file, from_file_key)
    client = state(ctx).client()
    peer = target(client, node, called_ae)

    def run(index: int) -> RetrieveResult:
        label, query = queries[index]
        with ProgressBar(label or "retrieving") as bar:
            result = client.get(peer, query, output_dir, layout=layout, overwrite=overwrite,
                                method=method.value, wado_uri=wado_uri, deidentify=deidentify,
                                deid_options=deid_option or (), forward_to=forward_to,
                                progress=lambda p: bar.update(p.received, p.total, p.bytes))
        print_check(result.check)
        if output is not SummaryFormat.json:
            print_summary(result, label, forward_to)
        return result

    outcomes = run_each([label for label, _ in queries], run)
    if output is SummaryFormat.json:
        # run_each raises a single run's error, so a single outcome has its result
        only = outcomes[0].result if len(outcomes) == 1 else None
        print_json(summary(only) if only is not None
                   else [item_summary(o, summary) for o in outcomes])
    raise_for_outcomes(outcomes, RetrieveResult.raise_for_status)


def summary(result: RetrieveResult) -> dict[str, object]:
    """The JSON summary of a retrieve."""
    data = result.model_dump(mode="json", exclude={"files", "instances"})
    data["received"] = result.received
    return data


def print_summary(result: RetrieveResult, label: str | None = None, forwarded_to: str | None = None) -> None:
    """A human summary of a retrieve, after ``label:`` for an item of a list (sent on to
    ``forwarded_to`` rather than written, when given)."""
    prefix = f"{label}: " if label else ""
    if result.requests == 0:
        err.print(f"{prefix}No matches.", markup=False)
        return
    mb = result.bytes / 1e6
    out.print(
        f"{prefix}Retrieved {counted(result.received, 'instance')} ({mb:.1f} MB) in {result.seconds:.1f} s "
        f"({rates(result.received, result.bytes, result.seconds)}) by {_service(result.method)}: "
        + (f"{result.written} sent on to {forwarded_to}" if forwarded_to is not None else
           f"{result.written} written, {result.skipped} already present")
        + f"; peer reports {result.completed} completed, {result.failed} failed, {result.warning} warnings."
    )
    for failure in result.local_failures[:MAX_LISTED_FAILURES]:
        err.print(f"  not stored: {failure.sop_instance_uid}: {failure.reason}", markup=False)
    for uid in result.failed_instances[:MAX_LISTED_FAILURES]:
        err.print(f"  failed at the peer: {uid}", markup=False)


def _service(method: str) -> str:
    return method.upper() if method.startswith("wado") else f"C-{method.upper()}"
