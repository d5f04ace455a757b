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


VERBATIM = "\b\n"
"""What tells Click's plain help not to rewrap the paragraph it starts."""


def help_and_examples(command: Callable[..., Any], *, plain: bool = False) -> tuple[str | None, str | None]:
    """``command``'s help text without its examples, and the examples section (None
    when it has none); for ``plain`` (Click's) help, each example kept on its line."""
    doc = inspect.getdoc(command)
    if doc is None or MARKER not in doc:
        return doc, None
    description, examples = doc.split(MARKER, 1)
    paragraphs = [p.strip() for p in examples.split("\n\n") if p.strip()]
    marked = [VERBATIM + p if plain else p for p in paragraphs]
    return description.rstrip(), "\n\n".join([MARKER, *marked])


def examples_last(app: typer.Typer, *, plain: bool = False) -> typer.Typer:
    """``app`` with each of its commands' examples moved to the end of their help (the
    commands' own ``help`` and ``epilog``, where given, are kept)."""
    for info in app.registered_commands:
        if info.callback is not None and info.help is None and info.epilog is None:
            info.help, info.epilog = help_and_examples(info.callback, plain=plain)
    return app
