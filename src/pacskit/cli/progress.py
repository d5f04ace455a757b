"""A progress bar on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from pacskit.cli.common import err


class ProgressBar:
    """Instances done out of total, MB (unless ``sizes`` is false: a C-MOVE's
    sub-operations have none) and instances per second."""

    def __init__(self, label: str, sizes: bool = True) -> None:
        self.label = label
        self.sizes = sizes
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.started = 0.0

    def __enter__(self) -> ProgressBar:
        if err.is_terminal:
            self.progress = Progress(
                TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                TextColumn(("{task.fields[mb]:.1f} MB  " if self.sizes else "") + "{task.fields[rate]:.0f} inst/s"),
                TimeElapsedColumn(), console=err, transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=None, mb=0.0, rate=0.0)
            self.started = time.monotonic()
        return self

    def update(self, done: int, total: int | None, size: int) -> None:
        """Show ``done`` of ``total`` instances and ``size`` bytes."""
        if self.progress is not None and self.task is not None:
            elapsed = max(time.monotonic() - self.started, 1e-6)
            self.progress.update(self.task, completed=done, total=total, mb=size / 1e6,
                                 rate=done / elapsed)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


class InterruptCounts:
    """Items done out of total, as a progress callback feeds them, and Ctrl-C honoured
    between items only: the first SIGINT is noted and raised as KeyboardInterrupt at the
    next callback, once the item under way is whole; a second one interrupts at once. On
    the way out the context prints how far it got
    (``Interrupted: 12 of 300 files done; none half-written.``)."""

    def __init__(self, noun: str) -> None:
        self.noun = noun
        self.done = 0
        self.total: int | None = None
        self.interrupted = False
        self._previous: Any = None

    def follow(self, bar: ProgressBar) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback that counts, moves ``bar``, and raises
        KeyboardInterrupt when Ctrl-C came during the item just done."""
        def update(done: int, total: int) -> None:
            self.done, self.total = done, total
            bar.update(done, total, 0)
            if self.interrupted:
                raise KeyboardInterrupt
        return update

    def _note(self, number: int, frame: object) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True

    def __enter__(self) -> InterruptCounts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._note)
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if kind is KeyboardInterrupt:
            total = "?" if self.total is None else str(self.total)
            err.print(f"Interrupted: {self.done} of {total} {self.noun} done; none half-written.", markup=False)
