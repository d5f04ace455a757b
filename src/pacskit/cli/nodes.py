"""``pacskit nodes``: list the configured nodes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pacskit.cli.common import OutputFormat, err, out, print_json, state, write_rows

FIELDS = ("name", "ae_title", "host", "port", "dicomweb_url")


def nodes(
    ctx: typer.Context,
    output: Annotated[OutputFormat, typer.Option(
        "--format", "-f",
        help="table (tab-separated lines when not a terminal), tsv, csv or json.")] = OutputFormat.table,
) -> None:
    """List the nodes configured in pacskit.toml and the environment.

    Examples:

      pacskit nodes

      pacskit nodes -f json

      pacskit -c other.toml nodes -f tsv
    """
    settings = state(ctx).settings()
    rows = [
        {"name": name, "ae_title": cfg.ae_title, "host": cfg.host, "port": cfg.port,
         "dicomweb_url": cfg.dicomweb_url}
        for name, cfg in sorted(settings.nodes.items())
    ]
    if output is OutputFormat.json:
        print_json(rows)
    elif output is OutputFormat.csv:
        write_rows(rows, FIELDS, ",")
    elif output is OutputFormat.tsv or not out.is_terminal:
        write_rows(rows, FIELDS, "\t")
    elif rows:
        table = Table()
        for column in ("Name", "AE title", "Host", "Port", "DICOMweb URL"):
            table.add_column(column)
        for row in rows:
            table.add_row(*(Text(str(text)) for text in (
                row["name"], row["ae_title"] or "", row["host"] or "",
                str(row["port"]) if row["host"] else "", row["dicomweb_url"] or "")))
        out.print(table)
    if not rows:
        err.print("No nodes configured (add [nodes.NAME] tables to pacskit.toml).", markup=False)
