"""Who an association is from: its User Identity (PS3.7 D.3.3.7) checked against the
users and tokens of DICOMweb (``web.users``, ``web.tokens``), docs/user-identity.md.

A user name with its passcode (type 2) is accepted when the passcode is the user's, a
JSON Web Token (type 5) when it is one of ``web.tokens`` (compared as a bearer token
is, without decoding it); a user name alone (type 1), a Kerberos ticket (3) or a SAML
assertion (4) is refused: none proves anything here. With no users and no tokens
configured, an identity is ignored (PS3.7 D.3.3.7.1 lets an acceptor that does not
check identities do so). With ``archive.require_user_identity``, an association
without an accepted identity is rejected.
"""

from __future__ import annotations

import hmac

from pacskit.net.acceptor import IdentityRefused, Peer
from pacskit.net.ul.user_identity import JWT, TYPE_NAMES, USERNAME_AND_PASSCODE, UserIdentity
from pacskit.settings import Settings

TOKEN_USER = "(token)"
"""The user a valid token stands for, in logs and the audit trail (the token is never shown)."""


class Identities:
    """The users and tokens an association's identity is checked against."""

    def __init__(self, settings: Settings) -> None:
        web = settings.web
        self.passwords = {name.encode(): password.encode() for name, password in web.passwords.items()}
        self.tokens = [token.encode() for token in web.tokens]
        self.required = settings.archive.require_user_identity

    def authenticate(self, peer: Peer, identity: UserIdentity | None) -> str:
        """The user ``identity`` proves (``(token)`` for a token; empty when there is
        none and none is required, or none is checked).

        Raises:
            IdentityRefused: the identity is not accepted, or is missing and required.
        """
        if identity is None or not (self.passwords or self.tokens):
            if self.required:
                raise IdentityRefused("no user identity" if identity is None else "no users or tokens configured")
            return ""
        if identity.kind == USERNAME_AND_PASSCODE:
            expected = self.passwords.get(identity.primary)
            if expected is None or not hmac.compare_digest(identity.secondary, expected):
                raise IdentityRefused(f"wrong user name or passcode (user {identity.username!r})")
            return identity.username or ""
        if identity.kind == JWT:
            if any(hmac.compare_digest(identity.primary, token) for token in self.tokens):
                return TOKEN_USER
            raise IdentityRefused("the token is not accepted")
        kind = TYPE_NAMES.get(identity.kind, f"type {identity.kind}")
        raise IdentityRefused(f"a {kind} is not accepted (a user name and passcode, or a JSON Web Token, is)")
