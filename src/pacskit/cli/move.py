"""``pacskit move``: C-MOVE matching instances from a node to a third party."""

from __future__ import annotations

from typing import Annotated

import typer

from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import SummaryFormat, err, out, print_check, print_json, state
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
from pacskit.nodes import validate_ae_title


def move(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="Node name or dicom://AET@host:port.")],
    destination: Annotated[str, typer.Option("--to", help="AE title of the move destination, as the peer knows it.")],
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
    output: Annotated[SummaryFormat, typer.Option("--format", "-f", help="Summary format (table or json).")] = SummaryFormat.table,
    called_ae: CalledAeOption = None,
) -> None:
    """Move matching instances from a node to another AE (C-MOVE)."""
    destination = validate_ae_title(destination)
    query = build_query(level, model, patient_id, study_uid, series_uid, sop_uid, accession,
                        date, modality, description, key, limit)
    client = state(ctx).client()
    result = client.move(target(client, node, called_ae), query, destination)
    print_check(result.check)
    if output is SummaryFormat.json:
        print_json(result.model_dump(mode="json"))
    elif result.requests == 0:
        err.print("No matches.")
    else:
        out.print(
            f"Moved to {destination} in {result.seconds:.1f} s: {result.completed} completed, "
            f"{result.failed} failed, {result.warning} warnings.", markup=False
        )
        for uid in result.failed_instances[:20]:
            err.print(f"  failed: {uid}", markup=False)
    result.raise_for_status()
