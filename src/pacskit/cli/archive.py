"""``pacskit archive``: import files into the archive, export from it, check it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pacskit.cli.common import err, out, state
from pacskit.cli.global_options import with_global_options
from pacskit.cli.progress import InterruptCounts, ProgressBar
from pacskit.cli.query_options import (
    AccessionOption,
    DateOption,
    DescriptionOption,
    KeysOption,
    LevelOption,
    ModalityOption,
    ModelOption,
    PatientIdOption,
    SeriesUidOption,
    SopUidOption,
    StudyUidOption,
    build_query,
)
from pacskit.errors import PartialFailure
from pacskit.layout import DEFAULT_LAYOUT
from pacskit.settings import Settings

app = typer.Typer(help="The local archive: import, export, check.", no_args_is_help=True)

# The archive (SQLAlchemy) is imported by the commands that use it, so that every other
# command starts without it.

DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="Storage folder (and SQLite index).")]
DbOption = Annotated[str | None, typer.Option("--db", help="Index database URL.")]


def archive_settings(ctx: typer.Context, data_dir: Path | None, db: str | None) -> Settings:
    """The settings, with the archive's folder and database from the options."""
    settings = state(ctx).settings()
    changes = {k: v for k, v in (("data_dir", data_dir), ("db", db)) if v is not None}
    return settings.model_copy(update={"archive": settings.archive.model_copy(update=changes)})


@app.command("import")
@with_global_options
def import_(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (searched recursively).")],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Copy DICOM files into the archive, through the same ingest as C-STORE.

    Examples:

      pacskit archive import ./scans

      pacskit archive import /media/cd --data-dir /srv/pacskit-data
    """
    from pacskit.archive import Archive
    from pacskit.archive.maintenance import import_files

    counts = InterruptCounts("files")
    with Archive(archive_settings(ctx, data_dir, db)) as archive, counts, ProgressBar("importing") as bar:
        archive.recover()
        result = import_files(archive.ingest, paths, counts.follow(bar))
    out.print(f"Imported {result.imported} instances; {result.duplicates} already stored, "
              f"{len(result.failed)} refused, {result.not_dicom} non-DICOM files skipped.", markup=False)
    for path, reason in result.failed[:20]:
        err.print(f"  refused: {path}: {reason}", markup=False)
    if result.failed:
        raise PartialFailure(f"{len(result.failed)} files were refused (first: {result.failed[0][0].name})")


@app.command("export")
@with_global_options
def export_(
    ctx: typer.Context,
    output_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder to write into.")],
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
    keys: KeysOption = None,
    layout: Annotated[str, typer.Option("--layout", help="Path template under the output folder.")] = DEFAULT_LAYOUT,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace files already present.")] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Copy what a query matches out of the archive into a folder (names withheld).

    Examples:

      pacskit archive export -o out --study-uid 1.2.3

      pacskit archive export -o out -l series --modality CT -d 20240101-20240131
    """
    from pacskit.client import Client
    from pacskit.sources import ARCHIVE

    settings = archive_settings(ctx, data_dir, db)
    query = build_query(level, model, patient_id, study_uid, series_uid, sop_uid, accession, date,
                        modality, description, keys, None)
    counts = InterruptCounts("instances")
    with counts, ProgressBar("exporting") as bar:
        follow = counts.follow(bar)
        result = Client(settings).copy(ARCHIVE, query, output_dir, layout=layout, overwrite=overwrite,
                                       progress=lambda p: follow(p.received, p.total or 0))
    out.print(f"Exported {result.copied} instances to {output_dir} ({result.present} already there, "
              f"{len(result.failed)} missing from the archive's folder).", markup=False)
    if result.failed:
        raise PartialFailure(f"{len(result.failed)} indexed instances have no file: run pacskit archive check")


@app.command("check")
@with_global_options
def check_(
    ctx: typer.Context,
    repair: Annotated[bool, typer.Option("--repair", help="Fix what is found.")] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Find (and with --repair fix) disagreements between the index and the files.

    Examples:

      pacskit archive check

      pacskit archive check --repair --data-dir /srv/pacskit-data
    """
    from pacskit.archive import Archive
    from pacskit.archive.maintenance import check

    with Archive(archive_settings(ctx, data_dir, db)) as archive:
        result = check(archive.index, archive.ingest, repair=repair)
    verb = "fixed" if repair else "found"
    out.print(f"{len(result.rows_without_file)} rows without a file, {len(result.files_without_row)} files "
              f"without a row, {len(result.temporary_files)} temporary files {verb}"
              + (f"; {len(result.set_aside)} files set aside in quarantine/" if result.set_aside else "")
              + ".", markup=False)
    if not result.consistent and not repair:
        raise PartialFailure("the archive is not consistent: run pacskit archive check --repair")
