"""Each command's examples at the end of its ``--help``, after the options.

A command's docstring holds its description, then ``Examples:`` and one example per
paragraph. Typer shows a docstring whole before the options; split here, the examples
become the command's epilog, which Typer (and Click, in plain output) prints last.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer

MARKER = "Examples:"


def help_and_examples(command: Callable[..., Any]) -> tuple[str | None, str | None]:
    """``command``'s help text without its examples, and the examples section (None
    when it has none)."""
    doc = inspect.getdoc(command)
    if doc is None or MARKER not in doc:
        return doc, None
    description, examples = doc.split(MARKER, 1)
    return description.rstrip(), MARKER + "\n\n" + examples.strip("\n").rstrip()


def examples_last(app: typer.Typer) -> typer.Typer:
    """``app`` with each of its commands' examples moved to the end of their help (the
    commands' own ``help`` and ``epilog``, where given, are kept)."""
    for info in app.registered_commands:
        if info.callback is not None and info.help is None and info.epilog is None:
            info.help, info.epilog = help_and_examples(info.callback)
    return app
