"""The ``pacskit`` application: global options, commands, and exit codes mapped in one place."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from pacskit import __version__
from pacskit.cli.archive import app as archive_app
from pacskit.cli.commit import commit
from pacskit.cli.common import State, err
from pacskit.cli.completion import completion
from pacskit.cli.config import app as config_app
from pacskit.cli.config import init
from pacskit.cli.copy import copy
from pacskit.cli.echo import echo
from pacskit.cli.find import find
from pacskit.cli.get import get
from pacskit.cli.global_options import (
    AcseTimeoutOption,
    AeTitleOption,
    ConnectTimeoutOption,
    DimseTimeoutOption,
    MaxPduOption,
    NetworkTimeoutOption,
    PortOption,
    VerboseOption,
    set_verbosity,
    with_global_options,
)
from pacskit.cli.move import move
from pacskit.cli.mpps import app as mpps_app
from pacskit.cli.nodes import nodes
from pacskit.cli.receive import receive
from pacskit.cli.serve import serve
from pacskit.cli.store import store
from pacskit.cli.worklist import app as worklist_app
from pacskit.errors import MissingExtra, PacskitError, UsageError
from pacskit.extras import extra_for, missing_extra_message

EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="pacskit",
    help="DICOM networking toolkit: echo, find, get, move, store, receive, worklist, mpps, commit — without fetching patient names.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
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
    ae_title: AeTitleOption = None,
    port: PortOption = None,
    max_pdu: MaxPduOption = None,
    acse_timeout: AcseTimeoutOption = None,
    dimse_timeout: DimseTimeoutOption = None,
    network_timeout: NetworkTimeoutOption = None,
    connect_timeout: ConnectTimeoutOption = None,
    verbose: VerboseOption = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """The root options; every command takes them too (cli/global_options.py)."""
    set_verbosity(verbose)
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
        verbose=verbose,
    )


for command in (echo, find, get, copy, move, store, receive, commit, nodes, serve):
    app.command(name=command.__name__)(with_global_options(command))
app.command(name="init")(with_global_options(init))
app.command(name="completion")(with_global_options(completion))
app.add_typer(config_app, name="config")
app.add_typer(archive_app, name="archive")
app.add_typer(worklist_app, name="worklist")
app.add_typer(mpps_app, name="mpps")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every :class:`PacskitError` becomes one line on stderr and its exit code.

    Usage errors exit with 2, whether Typer finds them (an unknown option) or pacskit does
    (:class:`~pacskit.errors.UsageError`, e.g. a malformed ``--layout``).
    """
    try:
        code = app(args=argv, standalone_mode=False)
    except TyperException as exc:
        if not hasattr(exc, "format_message"):
            raise
        err.print(f"pacskit: error: {exc.format_message()}", markup=False)
        sys.exit(getattr(exc, "exit_code", UsageError.exit_code))
    except typer.Abort:
        err.print("pacskit: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except PacskitError as exc:
        err.print(f"pacskit: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("pacskit: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except ModuleNotFoundError as exc:
        if extra_for(exc.name) is None:
            raise
        err.print(f"pacskit: error: {missing_extra_message(exc.name or '')}", markup=False)
        sys.exit(MissingExtra.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
