"""``pacskit echo``: C-ECHO one or more nodes."""

from __future__ import annotations

from typing import Annotated

import typer

from pacskit.cli.called_ae import CalledAeOption, target
from pacskit.cli.common import OutputFormat, out, print_json, state, write_rows
from pacskit.cli.node_argument import complete_node
from pacskit.errors import PacskitError, PartialFailure

FIELDS = ("node", "ae_title", "address", "ok", "result", "rtt_ms", "associate_ms")


def echo(
    ctx: typer.Context,
    nodes: Annotated[list[str], typer.Argument(help="Node names or dicom://AET@host:port addresses.",
                                                autocompletion=complete_node)],
    output: Annotated[OutputFormat, typer.Option(
        "--format", "-f",
        help="table (tab-separated lines when not a terminal), tsv, csv or json.")] = OutputFormat.table,
    called_ae: CalledAeOption = None,
) -> None:
    """Check that DICOM nodes answer a C-ECHO (verification).

    Examples:

      pacskit echo pacs

      pacskit echo dicom://ORTHANC@127.0.0.1:4242 pacs -f json

      pacskit echo 127.0.0.1:104 --aec STORESCP
    """
    client = state(ctx).client()
    rows: list[dict[str, object]] = []
    failures: list[PacskitError] = []
    for name in nodes:
        row: dict[str, object] = {"node": name, "ae_title": None, "address": None}
        try:
            node = client.node(target(client, name, called_ae))
            row.update(ae_title=node.ae_title, address=f"{node.host}:{node.port}")
            result = client.echo(node)
            row.update(ok=True, result="success", rtt_ms=round(result.rtt_ms, 2),
                       associate_ms=round(result.associate_ms, 2))
        except PacskitError as exc:
            failures.append(exc)
            row.update(ok=False, result=str(exc), rtt_ms=None, associate_ms=None)
        rows.append(row)

    if output is OutputFormat.json:
        print_json(rows)
    elif output is OutputFormat.csv:
        write_rows(rows, FIELDS, ",")
    elif output is OutputFormat.tsv or not out.is_terminal:
        write_rows(rows, FIELDS, "\t")
    else:
        _print_table(rows)

    if failures:
        if len(nodes) == 1:
            raise failures[0]
        if len(failures) == len(nodes) and len({type(f) for f in failures}) == 1:
            raise failures[0]
        raise PartialFailure(f"{len(failures)} of {len(nodes)} nodes did not answer the C-ECHO")


def _print_table(rows: list[dict[str, object]]) -> None:
    """The rows as a Rich table, for a terminal (Rich's table modules are imported only then)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=None)
    for column, justify in (("Node", "left"), ("AE title", "left"), ("Address", "left"),
                            ("Result", "left"), ("RTT ms", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        result = Text("success", style="green") if row["ok"] else Text(str(row["result"]), style="red")
        rtt = f"{row['rtt_ms']:.1f}" if row["rtt_ms"] is not None else ""
        table.add_row(Text(str(row["node"])), Text(str(row["ae_title"] or "")),
                      Text(str(row["address"] or "")), result, rtt)
    out.print(table)
