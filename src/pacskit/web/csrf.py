"""The CSRF rule of the web actions that change the archive (docs/web-actions.md): a
browser sends stored Basic credentials with any request to the server, also one a
foreign page makes it send; such a page can neither set a custom header without a CORS
preflight (which the server does not grant it) nor hide its Origin. So an action must
carry ``X-Pacskit-Action: 1``, and an Origin, when it has one, must be the server's own
or one of ``[web] cors_origins`` named explicitly (``*`` does not count)."""

from __future__ import annotations

from starlette.requests import Request

HEADER = "X-Pacskit-Action"


def refusal(request: Request, cors_origins: list[str]) -> str | None:
    """Why ``request`` fails the rule, or None when it passes."""
    if request.headers.get(HEADER) != "1":
        return f"this action needs the header {HEADER}: 1 (protection against cross-site requests)"
    origin = request.headers.get("origin")
    if origin is None:
        return None
    own = f"{request.url.scheme}://{request.url.netloc}".lower()
    allowed = {o.rstrip("/").lower() for o in cors_origins if o != "*"}
    if origin.rstrip("/").lower() not in {own, *allowed}:
        return f"requests from origin {origin[:100]!r} may not take actions (not this server, nor in web.cors_origins)"
    return None
