"""A progress bar on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pacskit.cli.common import err


class ProgressBar:
    """Instances done out of total, MB (unless ``sizes`` is false: a C-MOVE's
    sub-operations have none) and instances per second."""

    def __init__(self, label: str, sizes: bool = True) -> None:
        self.label = label
        self.sizes = sizes
        self.progress: Progress | None = None
        self.task = None
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
