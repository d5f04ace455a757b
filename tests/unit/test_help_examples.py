"""Each command's ``--help`` ends with two or three examples, and every example is a
command line pacskit's own parser accepts (options, choices, arguments), so none can rot."""

from __future__ import annotations

import os
import pty
import re
import shlex
import subprocess
import sys

import pytest
import typer

from pacskit.cli.main import app

ROOT = typer.main.get_command(app)


def leaves(group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from leaves(command, (*path, name))
        else:
            yield (*path, name), command


LEAVES = dict(leaves(ROOT))


def examples(command) -> list[str]:
    text = command.epilog or ""
    assert text.startswith("Examples:"), "no Examples: section after the options"
    assert "Examples:" not in (command.help or ""), "examples before the options"
    after = text.split("Examples:", 1)[1]
    return [line.strip() for line in after.replace("\b", "").splitlines() if line.strip()]


def parse(line: str) -> None:
    """Parse ``line`` as the shell would hand it to pacskit, down to its command, without running it."""
    words = shlex.split(line.split("|")[-1].split("&&")[0].split(" >")[0])
    while words and words[0] != "pacskit":
        words.pop(0)
    assert words, line
    context = ROOT.make_context("pacskit", words[1:], resilient_parsing=False)
    command = ROOT
    while hasattr(command, "commands"):
        name, sub, rest = command.resolve_command(context, [*context._protected_args, *context.args])
        command = sub
        context = sub.make_context(name, rest, parent=context)


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_every_command_ends_its_help_with_examples_that_parse(path):
    lines = examples(LEAVES[path])
    assert 2 <= len(lines) <= 3, lines
    for line in lines:
        assert "pacskit " in line, line
        if line.startswith(("echo ", "source ")):
            continue
        parse(line)


def shown_help(words: tuple[str, ...], *, terminal: bool) -> str:
    """What ``pacskit WORDS --help`` prints, into a pseudo-terminal of 100 columns or a pipe."""
    env = {"COLUMNS": "100", "LINES": "40", "PATH": "/usr/bin:/bin", "TERM": "xterm"}
    command = [sys.executable, "-m", "pacskit", *words, "--help"]
    if not terminal:
        return subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(command, stdout=secondary, stderr=secondary, env=env)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(30) == 0
    finally:
        os.close(primary)
    return re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
@pytest.mark.parametrize("words", [("get",), ("archive", "import"), ("worklist", "add")], ids=" ".join)
def test_the_help_the_console_script_prints_ends_with_the_examples(words, terminal):
    shown = shown_help(words, terminal=terminal)
    lines = [line.strip(" │") for line in shown.splitlines() if line.strip(" │")]
    tail = lines[lines.index("Examples:"):]
    assert len(tail) in (3, 4) and all(line.startswith(f"pacskit {' '.join(words)}") for line in tail[1:]), tail


def test_help_is_drawn_in_panels_on_a_terminal_and_plain_in_a_pipe():
    assert "╭─ Options" in shown_help(("get",), terminal=True)
    piped = shown_help(("get",), terminal=False)
    assert "Options:" in piped and not set("╭│╰") & set(piped)
