"""``pacskit serve``: run the archive (Storage and Query/Retrieve SCP)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from pacskit.cli.archive import DataDirOption, DbOption, archive_settings
from pacskit.cli.common import err


def serve(
    ctx: typer.Context,
    data_dir: DataDirOption = None,
    db: DbOption = None,
    no_fsync: Annotated[bool, typer.Option("--no-fsync", help="Do not flush each file to disk before acknowledging it.")] = False,
) -> None:
    """Run a PACS: C-ECHO, C-STORE, C-FIND, C-GET and C-MOVE over an index database."""
    from pacskit.archive import Archive  # SQLAlchemy only for the commands that need it

    settings = archive_settings(ctx, data_dir, db)
    if no_fsync:
        settings = settings.model_copy(update={"archive": settings.archive.model_copy(update={"fsync": False})})
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    with Archive(settings) as archive:
        archive.start()
        where = settings.archive.db or f"SQLite in {settings.archive.data_dir}"
        err.print(f"pacskit archive {settings.ae_title} listening on {settings.bind_address}:{settings.port} "
                  f"(files in {settings.archive.data_dir}, index: {where}); Ctrl-C stops it.",
                  markup=False)
        err.print(f"  try: pacskit echo dicom://{settings.ae_title}@127.0.0.1:{settings.port}", markup=False)
        stop.wait()
    err.print("pacskit archive stopped.", markup=False)
