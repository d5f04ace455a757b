"""``pacskit move``: C-MOVE matching instances from a node to a third party."""

from __future__ import annotations

from typing import Annotated

import typer

from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import SummaryFormat, err, out, print_check, print_json, state
from pacskit.cli.item_lists import (
    FromFileKeyOption,
    FromFileOption,
    PatientIdsOption,
    item_summary,
    raise_for_outcomes,
    run_each,
)
from pacskit.cli.node_argument import DimseNode
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
from pacskit.models import MoveProgress, MoveResult
from pacskit.nodes import validate_ae_title


def move(
    ctx: typer.Context,
    node: DimseNode,
    destination: Annotated[str, typer.Option("--to", help="AE title of the move destination, as the peer knows it.")],
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
    output: Annotated[SummaryFormat, typer.Option("--format", "-f", help="Summary format (table or json).")] = SummaryFormat.table,
    called_ae: CalledAeOption = None,
    from_file: FromFileOption = None,
    from_file_key: FromFileKeyOption = None,
) -> None:
    """Move matching instances from a node to another AE (C-MOVE).

    Examples:

      pacskit move pacs --to WORKSTATION --study-uid 1.2.3

      pacskit move pacs --to WORKSTATION -l patient -p 12345 -p 67890

      pacskit move pacs --to WORKSTATION --from-file accessions.txt --from-file-key AccessionNumber
    """
    destination = validate_ae_title(destination)
    queries = build_queries(level, model, patient_id, study_uid, series_uid, sop_uid, accession,
                            date, modality, description, key, limit, from_file, from_file_key)
    client = state(ctx).client()
    peer = target(client, node, called_ae)

    def run(index: int) -> MoveResult:
        label, query = queries[index]
        last = MoveProgress()

        def report(progress: MoveProgress) -> None:
            nonlocal last
            last = progress
            bar.update(progress.done, progress.total, 0)

        try:
            with ProgressBar(label or "moving", sizes=False) as bar:
                result = client.move(peer, query, destination, progress=report)
        except KeyboardInterrupt:
            print_interrupted(last, destination, label)
            raise
        print_check(result.check)
        if output is not SummaryFormat.json:
            print_summary(result, label)
        return result

    outcomes = run_each([label for label, _ in queries], run)
    if output is SummaryFormat.json:
        # run_each raises a single run's error, so a single outcome has its result
        only = outcomes[0].result if len(outcomes) == 1 else None
        print_json(summary(only) if only is not None
                   else [item_summary(o, summary) for o in outcomes])
    raise_for_outcomes(outcomes, MoveResult.raise_for_status)


def print_interrupted(progress: MoveProgress, destination: str, label: str | None) -> None:
    """What a move had done when Ctrl-C stopped it, from its last pending response."""
    total = "?" if progress.total is None else str(progress.total)
    err.print(f"{label + ': ' if label else ''}Interrupted: {progress.done} of {total} sub-operations to "
              f"{destination} done ({progress.failed} failed); the peer may go on with the rest.", markup=False)


def summary(result: MoveResult) -> dict[str, object]:
    """The JSON summary of a move."""
    return result.model_dump(mode="json")


def print_summary(result: MoveResult, label: str | None = None) -> None:
    """A human summary of a move, after ``label:`` for an item of a list."""
    prefix = f"{label}: " if label else ""
    if result.requests == 0:
        err.print(f"{prefix}No matches.", markup=False)
        return
    out.print(
        f"{prefix}Moved to {result.destination} in {result.seconds:.1f} s: {result.completed} completed, "
        f"{result.failed} failed, {result.warning} warnings.", markup=False
    )
    for uid in result.failed_instances[:20]:
        err.print(f"  failed: {uid}", markup=False)
