"""The audit trail of ``pacskit serve``: one JSON object per line (docs/audit.md).

Five kinds of record (``event``): ``association`` (one per association, accepted or
rejected, when it ends), ``operation`` (one per DIMSE request served), ``http`` (one per
DICOMweb request), ``security`` (a refused TLS handshake or user identity) and
``action`` (a delete or send of the web page's, docs/web-actions.md). Every
record has ``time`` (UTC, ISO 8601 with milliseconds). What a record holds is decided by
its caller; none is given a person name: peers are named by AE title and address, users
by the user name they authenticated with, instances by UID, and HTTP requests by their
path without the query string.

A line is written by one ``write()`` on a descriptor opened with ``O_APPEND``, so lines of
concurrent threads (and processes) never interleave, and it is on disk (in the page cache)
as the call returns; a failed write is logged once and the server goes on.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from pacskit.errors import ConfigError

LOG = logging.getLogger("pacskit.archive")
STDERR = "-"


class AuditTrail:
    """Where the records go: a file (appended to) or standard error (``-``).

    Raises:
        ConfigError: on construction, when the file cannot be opened.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        if target == STDERR:
            self._fd = sys.stderr.fileno()
            self._owned = False
        else:
            try:
                self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise ConfigError(f"cannot open the audit file {target}: {exc.strerror}") from None
            self._owned = True
        self._failed = False
        self._lock = threading.Lock()

    def record(self, event: str, **fields: Any) -> None:
        """Write one record: ``event`` and ``fields`` (values JSON can hold), after the
        time. Fields whose value is None are left out."""
        entry = {"time": _now(), "event": event, **{k: v for k, v in fields.items() if v is not None}}
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode()
        try:
            os.write(self._fd, line)
        except OSError as exc:
            with self._lock:
                if not self._failed:
                    self._failed = True
                    LOG.error("cannot write the audit trail to %s: %s", self.target, exc.strerror)

    def close(self) -> None:
        if self._owned:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._owned = False


def open_trail(target: str) -> AuditTrail | None:
    """The trail ``[audit] file`` names; None when it is empty (no audit trail).

    Raises:
        ConfigError: the file cannot be opened.
    """
    return AuditTrail(target) if target else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
