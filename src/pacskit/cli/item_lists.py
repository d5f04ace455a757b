"""Lists of items on the command line: repeated ``-p``, ``--from-file FILE`` (``-`` for
standard input), and a run per item that goes on past a failed one."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Generic, TypeVar

import typer

from pacskit.cli.common import err
from pacskit.errors import InputError, PacskitError, PartialFailure, UsageError
from pacskit.query import UNIQUE_KEYS, Level

T = TypeVar("T")


class ListKey(str, Enum):
    """The key the lines of ``--from-file`` fill."""

    PatientID = "PatientID"
    StudyInstanceUID = "StudyInstanceUID"
    SeriesInstanceUID = "SeriesInstanceUID"
    SOPInstanceUID = "SOPInstanceUID"
    AccessionNumber = "AccessionNumber"


PER_ITEM_KEYS = frozenset({ListKey.PatientID, ListKey.AccessionNumber})
"""Keys whose lists are not one C-FIND match (only UIDs are, PS3.4 C.2.2.2.2): one run each."""

PatientIdsOption = Annotated[list[str] | None, typer.Option(
    "--patient-id", "-p", help="PatientID to match; repeatable: one query per ID, the run goes on past a failed one.")]
FromFileOption = Annotated[str | None, typer.Option(
    "--from-file", metavar="FILE",
    help="One ID or UID per line ('-': standard input; blank lines and # comments skipped).")]
FromFileKeyOption = Annotated[ListKey | None, typer.Option(
    "--from-file-key", help="The key the lines of --from-file fill; default: the level's unique key.")]


def read_items(source: str) -> list[str]:
    """The items of ``source`` (a file, or ``-`` for standard input): one per line, stripped,
    blank lines and lines starting with ``#`` left out.

    Raises:
        InputError: the file cannot be read, or holds no item.
    """
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--from-file {source}: {getattr(exc, 'strerror', None) or exc}") from None
    items = [line.strip() for line in text.splitlines()]
    items = [item for item in items if item and not item.startswith("#")]
    if not items:
        raise InputError(f"--from-file {source}: no ID or UID in it")
    return items


def default_key(level: Level | str | None) -> ListKey:
    """The key ``--from-file`` fills when ``--from-file-key`` is not given: the unique key of
    the level (PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID)."""
    if level is None:
        return ListKey.StudyInstanceUID
    return ListKey(UNIQUE_KEYS[Level.parse(level)])


@dataclass
class Lists:
    """The values of each listable key, after ``--from-file`` was read into its key."""

    values: dict[ListKey, list[str]] = field(default_factory=dict)
    split: frozenset[ListKey] = PER_ITEM_KEYS

    @classmethod
    def gather(cls, given: dict[ListKey, Iterable[str] | str | None], from_file: str | None,
               from_file_key: ListKey | None, level: Level | str | None,
               split: frozenset[ListKey] = PER_ITEM_KEYS) -> Lists:
        """The options' values, with the items of ``from_file`` added to ``from_file_key``'s;
        a list of a key in ``split`` is one run per item.

        Raises:
            InputError: ``from_file`` cannot be read.
            UsageError: ``--from-file-key`` without ``--from-file``, or lists of two keys that
                each need one run per item.
        """
        values = {key: [value] if isinstance(value, str) else list(value)
                  for key, value in given.items() if value}
        if from_file is None:
            if from_file_key is not None:
                raise UsageError("--from-file-key needs --from-file")
        else:
            key = from_file_key or default_key(level)
            if key not in given:
                raise UsageError(f"--from-file-key {key.value} is not a key of this command")
            values.setdefault(key, []).extend(read_items(from_file))
        per_item = [key.value for key in split if len(values.get(key, [])) > 1]
        if len(per_item) > 1:
            raise UsageError(f"lists of {' and '.join(sorted(per_item))} cannot be combined: give one of them as a list")
        return cls(values, split)

    def per_item(self) -> tuple[ListKey, list[str]] | None:
        """The key, and its values, that need one run each; ``None`` for one run."""
        for key in self.split:
            if len(self.values.get(key, [])) > 1:
                return key, list(dict.fromkeys(self.values[key]))
        return None

    def runs(self) -> list[tuple[str | None, dict[ListKey, str | None]]]:
        """Each run's label (``PatientID=A``; ``None`` for a single run) and key values (UID
        lists joined by commas: one list match)."""
        joined = {key: ",".join(values) if values else None for key, values in self.values.items()}
        split = self.per_item()
        if split is None:
            return [(None, joined)]
        key, values = split
        return [(f"{key.value}={value}", {**joined, key: value}) for value in values]


@dataclass
class Outcome(Generic[T]):
    """What one run of a list gave: its label, its result or its error."""

    label: str | None
    result: T | None = None
    error: PacskitError | None = None


def run_each(labels: list[str | None], run: Callable[[int], T]) -> list[Outcome[T]]:
    """``run(i)`` for each of ``labels``; with several, a failed run is reported on standard
    error as ``pacskit: LABEL: error: ...`` and the next one runs. A single run's error is raised."""
    if len(labels) == 1:
        return [Outcome(labels[0], run(0))]
    outcomes: list[Outcome[T]] = []
    for index, label in enumerate(labels):
        try:
            outcomes.append(Outcome(label, run(index)))
        except PacskitError as exc:
            err.print(f"pacskit: {label}: error: {exc}", markup=False)
            outcomes.append(Outcome(label, error=exc))
    return outcomes


def raise_for_outcomes(outcomes: list[Outcome[T]], check: Callable[[T], object] | None = None) -> None:
    """Raise when some runs failed (``check`` raises for a result that failed):
    :class:`PartialFailure` (26) when others succeeded, the first error when all failed.
    A single run raises as it would alone."""
    failed: list[tuple[str | None, PacskitError]] = [(o.label, o.error) for o in outcomes if o.error]
    for outcome in outcomes:
        if outcome.result is not None and check is not None:
            try:
                check(outcome.result)
            except PacskitError as exc:
                if len(outcomes) == 1:
                    raise
                failed.append((outcome.label, exc))
    if not failed:
        return
    if len(failed) == len(outcomes):
        raise failed[0][1]
    raise PartialFailure(f"{len(failed)} of {len(outcomes)} items failed (first: {failed[0][0]}: {failed[0][1]})")


def item_summary(outcome: Outcome[T], summarise: Callable[[T], dict[str, object]]) -> dict[str, object]:
    """One item of a list run in JSON: its label, and its summary or its error and exit code."""
    if outcome.result is None:
        error = outcome.error
        return {"item": outcome.label, "error": str(error), "exit_code": error.exit_code if error else 1}
    return {"item": outcome.label, **summarise(outcome.result)}
