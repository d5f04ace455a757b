"""DICOM nodes: an AE title at a host and port, named in the config or written inline."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pacskit.errors import InvalidAddress

_ADDRESS = re.compile(r"^(?P<scheme>dicoms?)://(?P<aet>[^@]*)@(?P<host>\[[^\]]*\]|[^:/@]*)(?::(?P<port>[^/]*))?/?$")
DEFAULT_DICOM_PORT = 104


def validate_ae_title(value: str) -> str:
    """Check an AE title against PS3.5 6.2 (AE VR): 1-16 characters of the default
    character repertoire, no backslash, no control characters, not only spaces.

    Raises:
        InvalidAddress: the title breaks one of these rules.
    """
    if not isinstance(value, str):
        raise InvalidAddress(f"AE title must be text, not {type(value).__name__}")
    stripped = value.strip(" ")
    if not stripped:
        raise InvalidAddress("AE title is empty")
    if len(stripped) > 16:
        raise InvalidAddress(f"AE title {stripped!r} is longer than 16 characters")
    if "\\" in stripped:
        raise InvalidAddress(f"AE title {stripped!r} contains a backslash")
    if any(ord(c) < 0x20 or ord(c) > 0x7E for c in stripped):
        raise InvalidAddress(f"AE title {stripped!r} contains a control or non-ASCII character")
    return stripped


def validate_port(value: int | str) -> int:
    """Return ``value`` as a TCP port number (1-65535).

    Raises:
        InvalidAddress: not an integer, or out of range.
    """
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise InvalidAddress(f"port {value!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise InvalidAddress(f"port {port} is out of range (1-65535)")
    return port


class Node(BaseModel):
    """A remote DICOM application entity.

    Attributes:
        ae_title: the peer's AE title (the Called AE Title of our associations).
        host: host name or IP address.
        port: TCP port.
        name: the name it has in the nodes table, if any.
        dicomweb_url: base URL of the peer's DICOMweb service, if it has one.
        tls: associations with it use DICOM TLS (PS3.15 Annex B).
        username, password, token, identity_response: the User Identity sent to it
            (PS3.7 D.3.3.7), see :class:`pacskit.settings.NodeConfig`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ae_title: str
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_DICOM_PORT
    name: str | None = None
    dicomweb_url: str | None = None
    tls: bool = False
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    token: str | None = Field(default=None, repr=False)
    identity_response: bool = False

    @field_validator("ae_title")
    @classmethod
    def _check_ae_title(cls, value: str) -> str:
        try:
            return validate_ae_title(value)
        except InvalidAddress as exc:
            raise ValueError(str(exc)) from None

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c.isspace() or c in "/@\\" for c in value):
            raise ValueError(f"host {value!r} is not a host name or address")
        return value

    @classmethod
    def create(cls, **fields: object) -> Node:
        """Build a node, turning validation errors into :class:`InvalidAddress`.

        Raises:
            InvalidAddress: a field is invalid.
        """
        try:
            return cls(**fields)  # type: ignore[arg-type]
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "node"
            raise InvalidAddress(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None

    @classmethod
    def parse(cls, address: str) -> Node:
        """Parse an inline address ``dicom://AET@host:port`` (port defaults to 104), or
        ``dicoms://AET@host:port`` for DICOM TLS.

        Raises:
            InvalidAddress: the address is malformed.
        """
        match = _ADDRESS.match(address.strip())
        if not match:
            raise InvalidAddress(f"malformed address {address!r}: expected dicom://AET@host:port "
                                 "(dicoms:// for TLS)")
        aet = validate_ae_title(match["aet"])
        host = match["host"].strip("[]")
        if not host:
            raise InvalidAddress(f"malformed address {address!r}: no host")
        port = validate_port(match["port"]) if match["port"] is not None else DEFAULT_DICOM_PORT
        return cls.create(ae_title=aet, host=host, port=port, tls=match["scheme"] == "dicoms")

    @property
    def label(self) -> str:
        """The name if it has one, else its ``AET@host:port`` address."""
        return self.name or self.address

    @property
    def description(self) -> str:
        """``name (AET@host:port)`` for a named node, else the address."""
        return f"{self.name} ({self.address})" if self.name else self.address

    @property
    def address(self) -> str:
        """``AET@host:port``."""
        return f"{self.ae_title}@{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.label


def is_inline_address(text: str) -> bool:
    """Whether ``text`` is written as an inline address rather than a node name."""
    return "://" in text or text.lower().startswith(("dicom:", "dicoms:"))


def is_web_address(text: str) -> bool:
    """Whether ``text`` is written as a DICOMweb URL (``http://`` or ``https://``)."""
    return text.strip().lower().startswith(("http://", "https://"))


def url_without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` removed, for messages."""
    try:
        parts = urlsplit(url.strip())
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<malformed URL>"
    return urlunsplit((parts.scheme, (parts.hostname or "") + port, parts.path, "", ""))
