"""The ``pacskit`` application: global options, commands, and exit codes mapped in one place."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from pacskit import __version__
from pacskit.cli.common import State, err, out
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
from pacskit.cli.help_examples import examples_last, help_and_examples
from pacskit.cli.launch import EVERY_COMMAND, command_word
from pacskit.errors import MissingExtra, PacskitError, UsageError
from pacskit.extras import extra_for, missing_extra_message

EXIT_INTERRUPTED = 130

def _version(value: bool) -> None:
    if value:
        typer.echo(f"pacskit {__version__}")
        raise typer.Exit()


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


COMMANDS = {
    "echo": ("pacskit.cli.echo", "echo",
             "Check that DICOM nodes answer a C-ECHO (verification)."),
    "find": ("pacskit.cli.find", "find",
             "Find patients, studies, series or images on a node (C-FIND, or "
             "QIDO-RS)."),
    "get": ("pacskit.cli.get", "get",
             "Retrieve matching instances into a folder (C-GET, C-MOVE to pacskit "
             "itself, or WADO-RS)."),
    "copy": ("pacskit.cli.copy", "copy",
             "Copy what a query matches from FROM to TO: any two of a node, a "
             "DICOMweb server, the archive, a folder."),
    "move": ("pacskit.cli.move", "move",
             "Move matching instances from a node to another AE (C-MOVE)."),
    "store": ("pacskit.cli.store", "store",
             "Send DICOM files to a node (C-STORE, or STOW-RS to a DICOMweb URL)."),
    "receive": ("pacskit.cli.receive", "receive",
             "Receive instances pushed by C-STORE into a folder (the storescp -od of "
             "pacskit), patient names withheld."),
    "commit": ("pacskit.cli.commit", "commit",
             "Ask a node to commit to keeping instances (Storage Commitment): those "
             "of FILES, or those the options match on the node (C-FIND)."),
    "nodes": ("pacskit.cli.nodes", "nodes",
             "List the nodes configured in pacskit.toml and the environment."),
    "serve": ("pacskit.cli.serve", "serve",
             "Run a PACS: C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE and the Modality "
             "Worklist over an index database, and DICOMweb (QIDO-RS, WADO-RS, "
             "STOW-RS, WADO-URI) over HTTP."),
    "init": ("pacskit.cli.config", "init",
             "Write a commented starter pacskit.toml (ours, a node 'pacs', the "
             "archive, DICOMweb)."),
    "completion": ("pacskit.cli.completion", "completion",
             "Print the completion script for bash or zsh: commands, options and "
             "their choices."),
}
"""Command name → (module, function, the one line ``pacskit --help`` lists it with, which
``tests/unit/test_launch.py`` checks against the function's own help)."""

GROUPS = {
    "config": ("pacskit.cli.config", "app"),
    "archive": ("pacskit.cli.archive", "app"),
    "worklist": ("pacskit.cli.worklist", "app"),
    "mpps": ("pacskit.cli.mpps", "app"),
}
GROUP_HELP = {
    "config": "Inspect the configuration.",
    "archive": "The local archive: import, export, check.",
    "worklist": "Modality Worklist: query a node (pacskit worklist NODE), or keep the "
        "archive's (add, ls, rm, status).",
    "mpps": "Modality Performed Procedure Step: create, set and get a step on a "
        "node; ls and show the archive's.",
}
"""Group name → the one line ``pacskit --help`` lists it with (checked like ``COMMANDS``)."""

_STUB_SETTINGS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


class _EveryCommandNeeded(Exception):
    """A command was reached that was not loaded (its name was not found in the words)."""


def _not_loaded() -> None:
    raise _EveryCommandNeeded


def build_app(wanted: str = EVERY_COMMAND) -> typer.Typer:
    """The ``pacskit`` application with command ``wanted`` imported (every one for
    :data:`~pacskit.cli.launch.EVERY_COMMAND`, none for ``NO_COMMAND``); the others are
    listed by name and one line, their modules not imported, so that a command starts with
    only the imports it needs. Help is drawn in Rich's panels on a terminal, and as plain
    text (Click's) in a pipe or a file, as the tables are."""
    app = typer.Typer(
        name="pacskit",
        help="DICOM networking toolkit: echo, find, get, move, store, receive, worklist, mpps, commit — "
             "without fetching patient names.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        rich_markup_mode="rich" if out.is_terminal else None,
    )
    app.callback()(_global_options)
    for name, (module, attribute, summary) in COMMANDS.items():
        if wanted in (name, EVERY_COMMAND):
            command = getattr(importlib.import_module(module), attribute)
            help_text, examples = help_and_examples(command, plain=not out.is_terminal)
            app.command(name=name, help=help_text, epilog=examples)(with_global_options(command))
        else:
            app.command(name=name, help=summary, context_settings=_STUB_SETTINGS, add_help_option=False)(_not_loaded)
    for name, (module, attribute) in GROUPS.items():
        if wanted in (name, EVERY_COMMAND):
            app.add_typer(examples_last(getattr(importlib.import_module(module), attribute),
                                        plain=not out.is_terminal), name=name)
        else:
            app.command(name=name, help=GROUP_HELP[name], context_settings=_STUB_SETTINGS,
                        add_help_option=False)(_not_loaded)
    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every :class:`PacskitError` becomes one line on stderr and its exit code.

    Usage errors exit with 2, whether Typer finds them (an unknown option) or pacskit does
    (:class:`~pacskit.errors.UsageError`, e.g. a malformed ``--layout``).
    """
    args = sys.argv[1:] if argv is None else argv
    wanted = EVERY_COMMAND if "_PACSKIT_COMPLETE" in os.environ else command_word(args)
    try:
        try:
            code = build_app(wanted)(args=argv, standalone_mode=False)
        except _EveryCommandNeeded:
            code = build_app()(args=argv, standalone_mode=False)
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
