"""Authentication of DICOMweb requests: HTTP Basic (RFC 7617) against ``web.users`` and
Bearer tokens (RFC 6750) against ``web.tokens``. When either is configured every request
must carry one; others get 401 with a WWW-Authenticate challenge for both schemes. CORS
preflight requests (OPTIONS) are answered before this check, by the CORS middleware.
Who a request is from (the user name, or ``(token)``) is left in the scope for the access
log (:mod:`pacskit.web.access_log`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from pacskit.archive.identities import TOKEN_USER
from pacskit.web.access_log import USER_KEY

LOG = logging.getLogger("pacskit.web")
REALM = "pacskit"
BEARER_USER = TOKEN_USER
"""The user the access log names for a request with a valid Bearer token."""


class AuthMiddleware:
    """ASGI middleware that lets a request through only with valid credentials.

    Args:
        app: the application behind it.
        users: user name → password, for HTTP Basic.
        tokens: the accepted Bearer tokens.
    """

    def __init__(self, app: ASGIApp, users: dict[str, str], tokens: list[str]) -> None:
        self.app = app
        self.users = {name.encode(): password.encode() for name, password in users.items()}
        self.tokens = [token.encode() for token in tokens]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        user = self._user(scope)
        if user is not None:
            scope[USER_KEY] = user
            await self.app(scope, receive, send)
            return
        LOG.warning("refused %s %s from %s: no valid credentials", scope.get("method"), scope.get("path"),
                    (scope.get("client") or ("?",))[0])
        body = b"authentication required\n"
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"www-authenticate", f'Basic realm="{REALM}", Bearer realm="{REALM}"'.encode()),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _user(self, scope: Scope) -> str | None:
        """Who the valid credentials of the request are from — the user name, or
        ``(token)`` for a Bearer token —, or None."""
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, credentials = header.partition(b" ")
        credentials = credentials.strip()
        if scheme.lower() == b"bearer":
            valid = any(hmac.compare_digest(credentials, token) for token in self.tokens)
            return BEARER_USER if valid else None
        if scheme.lower() == b"basic":
            try:
                user, sep, password = base64.b64decode(credentials, validate=True).partition(b":")
            except (binascii.Error, ValueError):
                return None
            expected = self.users.get(user)
            if sep and expected is not None and hmac.compare_digest(password, expected):
                return user.decode("utf-8", "replace")
        return None
