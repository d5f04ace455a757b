"""``pacskit init`` (a commented starter pacskit.toml) and ``pacskit config show`` (the
settings in force, and where each came from)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pacskit.cli.common import OutputFormat, err, out, print_json, state, write_rows
from pacskit.cli.global_options import with_global_options
from pacskit.errors import OutputError
from pacskit.settings import CONFIG_FILE_NAME, find_config_file
from pacskit.settings_origin import setting_origins, value_text

STARTER = '''\
# pacskit.toml — written by `pacskit init`. Every setting is optional; a PACSKIT_* variable
# (PACSKIT_AE_TITLE, PACSKIT_WEB__PORT) or a command-line option overrides what is here.
# `pacskit config show` prints the settings in force and where each came from.

ae_title = "PACSKIT"          # our AE title (Calling AE Title, and our Storage SCP's)
port = 11112                  # where `pacskit serve`, `receive` and C-MOVE to ourselves listen
# bind_address = "0.0.0.0"
# allow_patient_names = false # names are never requested, shown or written unless true

# Timeouts, in seconds.
# acse_timeout = 30
# dimse_timeout = 60
# network_timeout = 120
# connect_timeout = 10

# The remote nodes, by name: `pacskit echo pacs`, `pacskit find pacs -p 12345`.
# The one below is the Orthanc of `make peers` / a local Orthanc's defaults.
[nodes.pacs]
ae_title = "ORTHANC"
host = "127.0.0.1"
port = 4242
# dicomweb_url = "http://127.0.0.1:8042/dicom-web"
# tls = false                 # DICOM TLS to this node (or use a dicoms:// address)

# A DICOMweb-only node:
# [nodes.web]
# dicomweb_url = "https://pacs.hospital.example/dicom-web"
# token = "..."               # or username = "..." and password = "..."

# `pacskit serve`: the archive and its DICOMweb service.
[archive]
data_dir = "pacskit-data"     # files and the SQLite index
# db = "postgresql+psycopg://pacskit@localhost/pacskit"   # instead of SQLite

[web]
port = 8080
bind = "127.0.0.1"            # another address needs users or tokens
# users = { reader = "..." }  # HTTP Basic
# tokens = ["..."]            # HTTP Bearer

# DICOM TLS (BCP 195) and HTTPS: see docs/tls.md.
# [tls]
# certificate = "pacskit.pem"
# key = "pacskit.key"
# ca = "hospital-ca.pem"
'''

app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


def init(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="File to write.")] = Path(CONFIG_FILE_NAME),
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
) -> None:
    """Write a commented starter pacskit.toml (ours, a node 'pacs', the archive, DICOMweb).

    Refuses to replace an existing file without --force.

    Examples:

      pacskit init

      pacskit init ~/.config/pacskit/pacskit.toml

      pacskit init --force && pacskit config show
    """
    if path.exists() and not force:
        raise OutputError(f"{path} exists: --force replaces it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(STARTER, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    err.print(f"wrote {path}; edit [nodes.pacs], then: pacskit echo pacs", markup=False)


@app.command("show")
@with_global_options
def show(
    ctx: typer.Context,
    output: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, tsv, csv or json.")] = OutputFormat.table,
) -> None:
    """Print every setting in force and where it came from: default, file, env or option.

    Passwords and tokens (of nodes, of web.users, inside URLs) are masked.

    Examples:

      pacskit config show

      pacskit config show --aet ME -f json

      PACSKIT_WEB__PORT=8081 pacskit config show
    """
    root = state(ctx)
    settings = root.settings()
    config_file = root.config_file or find_config_file()
    origins = setting_origins(settings, config_file, os.environ, root.overrides)
    if output is OutputFormat.json:
        print_json({"config_file": str(config_file) if config_file else None,
                    "settings": [{"name": o.name, "value": o.value, "source": o.source} for o in origins]})
        return
    rows = [{"setting": o.name, "value": value_text(o.value), "source": o.source} for o in origins]
    if output is OutputFormat.csv:
        write_rows(rows, ["setting", "value", "source"], ",")
    elif output is OutputFormat.tsv or not out.is_terminal:
        write_rows(rows, ["setting", "value", "source"], "\t")
    else:
        table = Table(caption=f"config file: {config_file or 'none (defaults and environment)'}")
        table.add_column("setting", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_column("source", no_wrap=True)
        for row in rows:
            source = "file" if row["source"].startswith("file ") else row["source"]
            table.add_row(Text(row["setting"]), Text(row["value"]), Text(source))
        out.print(table)
