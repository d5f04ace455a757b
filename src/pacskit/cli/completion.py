"""``pacskit completion bash|zsh``: the shell's completion script for pacskit — Typer's, the
one its runtime answers (``add_completion`` in cli/main.py; also ``--show-completion``)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

PROG_NAME = "pacskit"
COMPLETE_VAR = "_PACSKIT_COMPLETE"
"""The variable the script sets when it asks pacskit for completions (Click's protocol)."""


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"


def completion(
    ctx: typer.Context,
    shell: Annotated[Shell, typer.Argument(help="bash or zsh.")],
) -> None:
    """Print the completion script for bash or zsh: commands, options and their choices.

    Examples:

      pacskit completion bash > ~/.local/share/bash-completion/completions/pacskit

      echo 'eval "$(pacskit completion zsh)"' >> ~/.zshrc

      source <(pacskit completion bash)
    """
    # typer.completion imports it without re-exporting it explicitly
    from typer.completion import get_completion_script  # type: ignore[attr-defined]

    print(get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell.value))
