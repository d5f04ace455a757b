"""The command line's log on standard error, as DCMTK writes it: ``I: message``,
``D: message``, ``W: ...``, ``E: ...`` — one prefix on every line of a message — and, for
``pacskit serve``, a timestamp before it (``2026-12-02 10:11:12.345 I: ...``).

Only pacskit's loggers follow ``-v`` (INFO) and ``-vv`` (DEBUG); every other library's
(httpx, uvicorn, sqlalchemy, pynetdicom) stays at WARNING. The set-up may run any number
of times (the options come before and after the command): one handler, replaced settings.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

PACSKIT = "pacskit"
MESSAGE_LOGGERS = ("pacskit.dimse", "pacskit.pdu")
"""Per-message loggers, which the server shows only when asked (``-v``)."""
OTHER_LIBRARIES = ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy",
                   "pynetdicom", "pydicom", "asyncio", "multipart", "PIL", "urllib3")
LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)
LETTERS = {logging.DEBUG: "D", logging.INFO: "I", logging.WARNING: "W", logging.ERROR: "E",
           logging.CRITICAL: "F"}


class LevelLetterFormatter(logging.Formatter):
    """``I: text`` on each line of a record; other libraries' records name their logger
    (``W: httpx: text``); ``timestamps`` puts the local time first, to the millisecond."""

    def __init__(self, *, timestamps: bool = False) -> None:
        super().__init__()
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        prefix = f"{LETTERS.get(record.levelno, record.levelname[:1])}: "
        if record.name != PACSKIT and not record.name.startswith(PACSKIT + "."):
            prefix += f"{record.name}: "
        if self.timestamps:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
            prefix = f"{stamp}.{int(record.msecs):03d} {prefix}"
        return "\n".join(prefix + line for line in text.splitlines() or [""])


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (Rich's progress display
    and test runners replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure(verbose: int, *, server: bool = False) -> None:
    """Log pacskit at WARNING, INFO (``verbose`` 1) or DEBUG (2 and more), to standard
    error. ``server`` (``pacskit serve``): timestamps, and INFO at least — associations
    and operations; the per-message lines only from ``verbose`` 1. With ``verbose``, the
    UID names those lines give are loaded now, not inside the first exchange they time."""
    level = LEVELS[min(max(verbose, 0), 2)]
    if verbose > 0:
        from pacskit.dimse_text import load_uid_names

        load_uid_names()
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(LevelLetterFormatter(timestamps=server))
    root.setLevel(logging.WARNING)
    logging.getLogger(PACSKIT).setLevel(min(level, logging.INFO) if server else level)
    for name in MESSAGE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if server and not verbose else logging.NOTSET)
    for name in OTHER_LIBRARIES:
        other = logging.getLogger(name)
        if other.level < logging.WARNING:
            other.setLevel(logging.WARNING)
