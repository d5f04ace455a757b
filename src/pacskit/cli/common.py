"""What every command shares: global options, output formats, consoles."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pacskit.client import Client
    from pacskit.models import AnswerCheck
    from pacskit.settings import Settings

out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


class OutputFormat(str, Enum):
    """What ``find`` and ``nodes`` print: a table (tab-separated lines when standard output
    is not a terminal), tab-separated lines, CSV or JSON."""

    table = "table"
    tsv = "tsv"
    csv = "csv"
    json = "json"


class MatchFormat(str, Enum):
    """What ``find`` prints: :class:`OutputFormat`, or the DICOM JSON model (PS3.18 F.2)."""

    table = "table"
    tsv = "tsv"
    csv = "csv"
    json = "json"
    dicom_json = "dicom-json"


class SummaryFormat(str, Enum):
    """What the commands that report one outcome (echo, get, move, store) print."""

    table = "table"
    json = "json"


@dataclass
class State:
    """Global options, turned into settings only when a command needs them."""

    config_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    verbose: int = 0
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            from pacskit.settings import Settings

            self._settings = Settings.load(self.config_file, **self.overrides)
        return self._settings

    def client(self) -> Client:
        from pacskit.client import Client

        return Client(self.settings())


def state(ctx: typer.Context) -> State:
    """The :class:`State` the main callback stored on the context."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless ``count`` is 1: "1 instance", "3 instances"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def rates(count: int, size: int, seconds: float) -> str:
    """``count`` instances of ``size`` bytes in ``seconds``, as instances and MB per second."""
    if seconds <= 0:
        return "—"
    per_second = count / seconds
    instances = f"{per_second:.1f}" if per_second < 10 else f"{per_second:.0f}"
    return f"{instances} inst/s, {size / 1e6 / seconds:.1f} MB/s"


def print_check(check: AnswerCheck | None) -> None:
    """Say on standard error which answers of a search were dropped or kept unverified."""
    for line in check.messages() if check is not None else []:
        err.print(line, markup=False)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on standard output."""
    out.print_json(json.dumps(data), highlight=False) if out.is_terminal else print(json.dumps(data, indent=2))


def write_rows(rows: Iterable[dict[str, Any]], fields: Sequence[str], delimiter: str) -> None:
    """``rows`` as CSV (or tab-separated with ``delimiter="\\t"``): a header line of
    ``fields``, lines ending in LF, ``None`` as an empty cell."""
    writer = csv.DictWriter(sys.stdout, fieldnames=list(fields), delimiter=delimiter,
                            lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
