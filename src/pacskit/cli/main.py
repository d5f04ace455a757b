"""The ``pacskit`` application: global options, commands, and exit codes mapped in one place."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from pacskit import __version__
from pacskit.cli.archive import app as archive_app
from pacskit.cli.common import State, err
from pacskit.cli.echo import echo
from pacskit.cli.find import find
from pacskit.cli.get import get
from pacskit.cli.move import move
from pacskit.cli.nodes import nodes
from pacskit.cli.serve import serve
from pacskit.cli.store import store
from pacskit.errors import PacskitError

EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="pacskit",
    help="DICOM networking toolkit: echo, find, get, move, store — without fetching patient names.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pacskit {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="pacskit.toml to use.", envvar="PACSKIT_CONFIG")] = None,
    ae_title: Annotated[str | None, typer.Option("--aet", help="Our AE title (calling AE).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Our storage SCP port.")] = None,
    max_pdu: Annotated[int | None, typer.Option("--max-pdu", help="Largest PDU we accept, bytes (0: no limit).")] = None,
    acse_timeout: Annotated[float | None, typer.Option("--acse-timeout", help="Association timeout, s.")] = None,
    dimse_timeout: Annotated[float | None, typer.Option("--dimse-timeout", help="Per-message DIMSE timeout, s.")] = None,
    network_timeout: Annotated[float | None, typer.Option("--network-timeout", help="Idle network timeout, s.")] = None,
    connect_timeout: Annotated[float | None, typer.Option("--connect-timeout", help="TCP connect timeout, s.")] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = State(
        config_file=config,
        overrides={
            "ae_title": ae_title,
            "port": port,
            "max_pdu": max_pdu,
            "acse_timeout": acse_timeout,
            "dimse_timeout": dimse_timeout,
            "network_timeout": network_timeout,
            "connect_timeout": connect_timeout,
        },
    )


app.command()(echo)
app.command()(find)
app.command()(get)
app.command()(move)
app.command()(store)
app.command()(nodes)
app.command()(serve)
app.add_typer(archive_app, name="archive")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every :class:`PacskitError` becomes one line on stderr and its exit code.

    Usage errors exit with 2, whether Typer finds them (an unknown option) or pacskit does
    (:class:`~pacskit.errors.UsageError`, e.g. a malformed ``--layout``).
    """
    try:
        app(args=argv)
    except PacskitError as exc:
        err.print(f"pacskit: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("pacskit: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":  # pragma: no cover
    main()
