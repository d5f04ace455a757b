"""Run the real ``pacskit`` command line in a subprocess, as a user would."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def run_cli(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``pacskit ARGS...``, with ``input`` on its standard input; the environment has no
    PACSKIT_* settings unless given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    base["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "pacskit", *map(str, args)],
        capture_output=True, text=True, input=input, cwd=cwd, env={**base, **(env or {})}, timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], exit_code: int, text: str) -> None:
    """The command failed with ``exit_code`` and a single ``pacskit: error:`` line."""
    assert result.returncode == exit_code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in lines if line.startswith("pacskit: error:")]
    assert len(errors) == 1, result.stderr
    assert text in errors[0], errors[0]


@contextmanager
def logging_restored() -> Iterator[None]:
    """The logging configuration as it was, after a command run in this process (the CLI
    sets the pacskit loggers' levels and adds a handler, which would change what later
    tests in the same worker capture)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logger.level for name, logger in logging.Logger.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, logger in logging.Logger.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))
