"""User Identity negotiation (PS3.7 D.3.3.7; PS3.8 the sub-items 0x58 and 0x59).

A requestor may name who is behind an association in its A-ASSOCIATE-RQ: a user name
(type 1), a user name and passcode (type 2), a Kerberos ticket (3), a SAML assertion (4)
or a JSON Web Token (5), and ask for a positive response. The acceptor that accepts the
identity answers it, when asked, with the 0x59 sub-item in its A-ASSOCIATE-AC: a server
response, empty for types 1 and 2 (D.3.3.7.2). A requestor's sub-item is encoded by
:func:`pacskit.net.ul.associate_rq.identity_item` and the answer read by
:mod:`pacskit.net.ul.associate_ac`; an acceptor reads and answers them with pynetdicom's
codecs (:mod:`pacskit.net.ul.acceptance`).

Nothing here logs, and :meth:`UserIdentity.__repr__` withholds the secret fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

USERNAME = 1
USERNAME_AND_PASSCODE = 2
KERBEROS = 3
SAML = 4
JWT = 5

TYPE_NAMES = {
    USERNAME: "username",
    USERNAME_AND_PASSCODE: "username and passcode",
    KERBEROS: "Kerberos service ticket",
    SAML: "SAML assertion",
    JWT: "JSON Web Token",
}
"""PS3.7 Table D.3-14, User-Identity-Type."""

WITHHELD = "(withheld)"


@dataclass(frozen=True)
class UserIdentity:
    """A User Identity sub-item of an A-ASSOCIATE-RQ (PS3.7 D.3.3.7.1).

    Attributes:
        kind: the User-Identity-Type (1 to 5).
        primary: the user name, or the ticket, assertion or token.
        secondary: the passcode (type 2 only).
        response_requested: the Positive-response-requested field.
    """

    kind: int
    primary: bytes
    secondary: bytes = field(default=b"", repr=False)
    response_requested: bool = False

    @classmethod
    def of(cls, *, username: str | None = None, password: str | None = None, token: str | None = None,
           response_requested: bool = False) -> UserIdentity | None:
        """The identity a requestor configured with these sends: a JSON Web Token when
        ``token`` is given, else the user name with its passcode (or without one), else
        none."""
        if token:
            return cls(JWT, token.encode(), response_requested=response_requested)
        if not username:
            return None
        if password:
            return cls(USERNAME_AND_PASSCODE, username.encode(), password.encode(), response_requested)
        return cls(USERNAME, username.encode(), response_requested=response_requested)

    @property
    def username(self) -> str | None:
        """The user name of a type 1 or 2 identity."""
        if self.kind in (USERNAME, USERNAME_AND_PASSCODE):
            return self.primary.decode("utf-8", "replace")
        return None

    @property
    def description(self) -> str:
        """The identity for a log line: its type and user name, never its secret."""
        name = TYPE_NAMES.get(self.kind, f"type {self.kind}")
        if self.kind == USERNAME:
            return f"{name} {self.username!r}"
        if self.kind == USERNAME_AND_PASSCODE:
            return f"{name} {self.username!r}, passcode {WITHHELD}"
        return f"{name} {WITHHELD}"

    def __repr__(self) -> str:
        return f"UserIdentity({self.description}, response_requested={self.response_requested})"
