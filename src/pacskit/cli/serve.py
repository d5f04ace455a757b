"""``pacskit serve``: run the archive (Storage and Query/Retrieve SCP)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from pacskit.cli.archive import DataDirOption, DbOption, archive_settings
from pacskit.cli.common import err, state
from pacskit.cli.log_setup import configure
from pacskit.errors import ConfigError


def serve(
    ctx: typer.Context,
    data_dir: DataDirOption = None,
    db: DbOption = None,
    no_fsync: Annotated[bool, typer.Option("--no-fsync", help="Do not flush each file to disk before acknowledging it.")] = False,
    http_port: Annotated[int | None, typer.Option("--http-port", help="DICOMweb HTTP port (0: no DICOMweb).", min=0, max=65535)] = None,
    no_http: Annotated[bool, typer.Option("--no-http", help="Do not serve DICOMweb.")] = False,
    tls_port: Annotated[int | None, typer.Option("--tls-port", help="Also listen for DICOM TLS on this port (tls.port).", min=1, max=65535)] = None,
    ohif: Annotated[Path | None, typer.Option("--ohif", help="Serve this unpacked OHIF Viewer build (the dist folder of @ohif/app) on its own port (web.ohif_dir).", file_okay=False)] = None,
    ohif_port: Annotated[int | None, typer.Option("--ohif-port", help="The OHIF Viewer's HTTP port (web.ohif_port; default: the DICOMweb port + 1).", min=1, max=65535)] = None,
) -> None:
    """Run a PACS: C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE and the Modality Worklist over an index database, and
    DICOMweb (QIDO-RS, WADO-RS, STOW-RS, WADO-URI) over HTTP.

    Examples:

      pacskit serve --port 11112 --http-port 8080

      pacskit serve --tls-port 2762 --tls-cert server.pem --tls-key server.key

      pacskit serve --ohif node_modules/@ohif/app/dist
    """
    from pacskit.archive import Archive  # SQLAlchemy only for the commands that need it

    configure(state(ctx).verbose, server=True)
    settings = archive_settings(ctx, data_dir, db)
    if no_fsync:
        settings = settings.model_copy(update={"archive": settings.archive.model_copy(update={"fsync": False})})
    if tls_port is not None:
        settings = settings.model_copy(update={"tls": settings.tls.model_copy(update={"port": tls_port})})
        if settings.tls.certificate is None:
            raise ConfigError("--tls-port needs a certificate (--tls-cert, or tls.certificate)")
    web = settings.web
    if no_http or http_port == 0:
        web = web.model_copy(update={"enabled": False})
    elif http_port is not None:
        web = web.model_copy(update={"port": http_port})
    if ohif is not None:
        web = web.model_copy(update={"ohif_dir": ohif})
    if ohif_port is not None:
        web = web.model_copy(update={"ohif_port": ohif_port})
    if web.ohif_dir is not None:
        from pacskit.web.ohif import check_build

        if not web.enabled:
            raise ConfigError("--ohif needs DICOMweb (it serves the archive's DICOMweb to the viewer)")
        check_build(web.ohif_dir)
    settings = settings.model_copy(update={"web": web})
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    with Archive(settings) as archive:
        archive.start()
        where = settings.archive.db or f"SQLite in {settings.archive.data_dir}"
        tls = settings.tls
        ports = [f"{settings.bind_address}:{settings.port}"] if tls.plain or tls.port is None else []
        if tls.port is not None:
            clients = "client certificates required" if tls.require_client_certificate else "no client certificate asked"
            ports.append(f"{settings.bind_address}:{tls.port} (DICOM TLS, {tls.profile}, {clients})")
        err.print(f"pacskit archive {settings.ae_title} listening on {' and '.join(ports)} "
                  f"(files in {settings.archive.data_dir}, index: {where}); Ctrl-C stops it.",
                  markup=False)
        if web.enabled:
            auth = "Basic/Bearer authentication" if web.authenticated else "no authentication"
            scheme = "https" if tls.https else "http"
            err.print(f"  DICOMweb on {scheme}://{web.bind}:{web.port}/dicom-web ({auth}); "
                      f"WADO-URI on {scheme}://{web.bind}:{web.port}/wado", markup=False)
            err.print(f"  the archive's page on {scheme}://{web.bind}:{web.port}/", markup=False)
            if web.viewer_port is not None:
                err.print(f"  OHIF Viewer on {scheme}://{web.bind}:{web.viewer_port}/ ({web.ohif_dir})", markup=False)
        err.print(f"  try: pacskit echo dicom://{settings.ae_title}@127.0.0.1:{settings.port}", markup=False)
        stop.wait()
    err.print("pacskit archive stopped.", markup=False)
