"""The DICOMweb access log: one line per HTTP request on ``pacskit.web.access``, at INFO —

``127.0.0.1:53422 alice "GET /dicom-web/studies?PatientName=(withheld)&limit=10" 200 1532 B 4.1 ms``

the client's address, the user (``-`` if none; ``(token)`` for a Bearer token, which is
never shown, nor is a password), the method, the path and query string, the status, the
bytes of the response body, the time until its last byte was handed to the server.

A query parameter that names a person name attribute (QIDO-RS matching, PS3.18 8.3.4),
by keyword or tag (``PatientName``, ``00100010``, ``ReferringPhysicianName``...), and at
the end of an attribute path (``00081120.00100010``), has its value withheld.

With an audit trail (:mod:`pacskit.audit`), each request is also an ``http`` record: the
client's address, the user, the method, the path without its query string, the status;
a request refused for want of valid credentials (401) is also a ``security`` record.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import unquote_plus

from pydicom.datadict import dictionary_VR, tag_for_keyword
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacskit.audit import AuditTrail
from pacskit.dimse_text import printable
from pacskit.privacy import PATIENT_NAME_TAGS

LOG = logging.getLogger("pacskit.web.access")
USER_KEY = "pacskit.user"
"""Where :class:`pacskit.web.auth.AuthMiddleware` puts who a request is from."""
WITHHELD = "(withheld)"
_PATH_LIMIT = 2000


class AccessLogMiddleware:
    """ASGI middleware logging each HTTP request when it ends (see the module docstring).

    Args:
        app: the application behind it (the whole app: it comes first).
        audit: the audit trail, if any.
    """

    def __init__(self, app: ASGIApp, audit: AuditTrail | None = None) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.audit is not None or LOG.isEnabledFor(logging.INFO)):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        target = _target(scope)
        seen: dict[str, int] = {"status": 0, "bytes": 0}
        logged = False

        async def sending(message: Message) -> None:
            nonlocal logged
            if message["type"] == "http.response.start":
                seen["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                logged = True
                self._log(scope, target, seen["status"], seen["bytes"], started)

        try:
            await self.app(scope, receive, sending)
        except BaseException:
            if not logged:
                logged = True
                self._log(scope, target, seen["status"] or 500, seen["bytes"], started)
            raise
        if not logged:
            self._log(scope, target, seen["status"], seen["bytes"], started)


    def _log(self, scope: Scope, target: str, status: int, size: int, started: float) -> None:
        _log(scope, target, status, size, started)
        if self.audit is not None:
            client = scope.get("client")
            address, path = client[0] if client else None, target.partition("?")[0]
            self.audit.record("http", address=address, user=scope.get(USER_KEY), method=scope.get("method", "?"),
                              path=path, status=status or None, seconds=round(time.perf_counter() - started, 3))
            if status == 401:
                self.audit.record("security", failure="http credentials", reason="no valid credentials",
                                  address=address, method=scope.get("method", "?"), path=path)


def _target(scope: Scope) -> str:
    """The path and query string as requested (routing changes the scope's paths)."""
    target: str = scope.get("root_path", "") + scope.get("path", "")
    query = scope.get("query_string", b"")
    return target + "?" + withhold_names(query.decode("latin-1")) if query else target


def _log(scope: Scope, target: str, status: int, size: int, started: float) -> None:
    if not LOG.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    who = f"{client[0]}:{client[1]}" if client else "-"
    LOG.info('%s %s "%s %s" %s %s %.1f ms', who, printable(str(scope.get(USER_KEY) or "-")),
             scope.get("method", "?"), printable(target, _PATH_LIMIT), status or "-",
             f"{size} B" if status else "-", (time.perf_counter() - started) * 1000)


def withhold_names(query: str) -> str:
    """``query`` (a raw query string) with the value of every parameter that names a
    person name attribute replaced by ``(withheld)``; the rest as sent."""
    return "&".join(_withheld(part) for part in query.split("&"))


def _withheld(parameter: str) -> str:
    key, sep, _ = parameter.partition("=")
    return f"{key}={WITHHELD}" if sep and names_a_person(unquote_plus(key)) else parameter


def names_a_person(key: str) -> bool:
    """Whether a QIDO-RS attribute key — a keyword or eight hex digits, or a dotted path
    of them — ends in a person name attribute (VR PN, or a patient name)."""
    last = key.strip().rsplit(".", 1)[-1]
    tag = _tag(last)
    if tag is None:
        return False
    if tag in PATIENT_NAME_TAGS:
        return True
    try:
        return "PN" in dictionary_VR(tag)
    except KeyError:
        return False


def _tag(word: str) -> int | None:
    if len(word) == 8:
        try:
            return int(word, 16)
        except ValueError:
            pass
    return tag_for_keyword(word)
