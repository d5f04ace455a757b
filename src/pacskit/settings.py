"""Settings: ``pacskit.toml`` < ``PACSKIT_*`` environment < explicit overrides (CLI flags).

The TOML file is the one named by ``PACSKIT_CONFIG``, else ``./pacskit.toml``, else
``pacskit.toml`` in the user config folder (``$XDG_CONFIG_HOME/pacskit`` or
``~/.config/pacskit``). Nodes are a table of tables::

    ae_title = "PACSKIT"
    port = 11112

    [nodes.pacs]
    ae_title = "TELEMIS"
    host = "pacs.example.org"
    port = 104

Environment variables use ``__`` for nesting: ``PACSKIT_NODES__PACS__PORT=1104``.

``Settings()`` and :meth:`Settings.load` read the same sources; ``load`` also takes an
explicit file and the CLI's flags, and turns an invalid value into a
:class:`~pacskit.errors.ConfigError`. An application with its own environment prefix
(and file) subclasses :class:`Settings`::

    class ClinicSettings(Settings):
        model_config = SettingsConfigDict(env_prefix="CLINIC_DICOM_", toml_file="clinic.toml")
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pacskit.errors import ConfigError, DeidentificationSecretMissing, InvalidAddress, UnknownNode
from pacskit.nodes import (
    Node,
    is_inline_address,
    is_web_address,
    url_without_credentials,
    validate_ae_title,
)

CONFIG_FILE_NAME = "pacskit.toml"
_chosen_file: ContextVar[tuple[Path | None] | None] = ContextVar("pacskit_config_file", default=None)


Operation = Literal["echo", "find", "get", "move", "store", "worklist", "mpps", "commitment"]
OPERATIONS: tuple[Operation, ...] = ("echo", "find", "get", "move", "store", "worklist", "mpps", "commitment")
WebAction = Literal["delete", "send"]
"""What a user of the web page may do to the archive beside reading it (docs/web-actions.md)."""


class NodeConfig(BaseModel):
    """One entry of the nodes table: a peer pacskit calls, and (for ``pacskit serve``) a
    peer allowed to call it, with the operations it may ask for.

    A node has a DICOM address (``ae_title``, ``host``, ``port``), a DICOMweb URL, or
    both; ``find``, ``get`` and ``store`` use DICOMweb when ``transport`` says so, or
    when the node has no DICOM address. ``username``/``password`` (HTTP basic) or
    ``token`` (bearer) authenticate DICOMweb requests, and are sent as the User Identity
    of pacskit's associations with it (PS3.7 D.3.3.7: a JSON Web Token, else the user
    name with its passcode), a positive response required with ``identity_response``
    (docs/user-identity.md). ``worklist_limit`` caps the
    worklist matches ``pacskit serve`` returns this peer (``archive.worklist.limit`` when
    unset). ``tls = true``: pacskit's associations with it, and the C-STORE
    sub-associations ``pacskit serve`` opens to it for a C-MOVE, use DICOM TLS (the
    ``[tls]`` block, docs/tls.md). With
    ``deidentify``, what ``find`` and ``get`` bring from this node is always
    de-identified (PS3.15 Annex E, the ``[deidentify]`` settings).
    """

    model_config = ConfigDict(extra="forbid")

    ae_title: str | None = None
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 104
    dicomweb_url: str | None = None
    transport: Literal["dimse", "dicomweb"] | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    identity_response: bool = False
    allow: list[Operation] = Field(default_factory=lambda: list(OPERATIONS))
    worklist_limit: Annotated[int, Field(ge=1)] | None = None
    tls: bool = False
    deidentify: bool = False

    @model_validator(mode="after")
    def _check_address(self) -> NodeConfig:
        if not self.dicomweb_url and not (self.ae_title and self.host):
            raise ValueError("a node needs ae_title and host, or a dicomweb_url")
        if self.transport == "dicomweb" and not self.dicomweb_url:
            raise ValueError("transport = 'dicomweb' needs a dicomweb_url")
        if self.transport == "dimse" and not (self.ae_title and self.host):
            raise ValueError("transport = 'dimse' needs ae_title and host")
        return self

    @property
    def uses_dicomweb(self) -> bool:
        """Whether ``find``, ``get`` and ``store`` go over DICOMweb."""
        return self.transport == "dicomweb" or (self.transport is None and not self.host)


class WorklistSettings(BaseModel):
    """The Modality Worklist SCP of ``pacskit serve`` (PS3.4 Annex K).

    Attributes:
        enabled: answer C-FIND in the Modality Worklist Information Model.
        calling_ae_as_station: answer a peer only the items scheduled for its own AE
            title (the calling AE title as Scheduled Station AE Title), whatever it asks.
        limit: the most matches one query returns (a peer's ``worklist_limit`` in the
            nodes table overrides it).
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    calling_ae_as_station: bool = False
    limit: Annotated[int, Field(ge=1)] = 1000


class DeidentifySettings(BaseModel):
    """De-identification (PS3.15 Annex E, docs/deidentification.md).

    Attributes:
        secret: the key of the pseudonyms (UIDs, Patient ID, date offset); the same
            secret gives the same pseudonyms on every run and machine.
        secret_file: a file whose content (stripped of surrounding white space) is the
            secret, when ``secret`` is not set.
        options: the profile's options (``retain-uids``, ``retain-modified-dates``...).
    """

    model_config = ConfigDict(extra="forbid")

    secret: SecretStr | None = None
    secret_file: Path | None = None
    options: list[str] = Field(default_factory=list)

    def secret_bytes(self) -> bytes:
        """The secret.

        Raises:
            DeidentificationSecretMissing: none is configured.
            ConfigError: ``secret_file`` cannot be read, or is empty.
        """
        if self.secret is not None and self.secret.get_secret_value():
            return self.secret.get_secret_value().encode("utf-8")
        if self.secret_file is not None:
            try:
                text = self.secret_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read deidentify.secret_file {self.secret_file}: "
                                  f"{exc.strerror or exc}") from None
            if not text:
                raise ConfigError(f"deidentify.secret_file {self.secret_file} is empty")
            return text
        raise DeidentificationSecretMissing(
            "de-identification needs a secret for its pseudonyms: set deidentify.secret or "
            "deidentify.secret_file in pacskit.toml, or PACSKIT_DEIDENTIFY__SECRET")


class CommitmentSettings(BaseModel):
    """The Storage Commitment SCP of ``pacskit serve`` (PS3.4 Annex J).

    Attributes:
        enabled: answer Storage Commitment requests (N-ACTION).
        attempts: how many times a report is offered on a new association to the
            requester (its node in the nodes table) before it is left for the next start.
        delay: seconds between those attempts.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    attempts: Annotated[int, Field(ge=1)] = 5
    delay: Annotated[float, Field(gt=0)] = 30.0


class ArchiveSettings(BaseModel):
    """The archive that ``pacskit serve`` runs.

    Attributes:
        data_dir: the storage folder (files, and the SQLite index by default).
        db: the index database URL; empty for SQLite in ``data_dir``, or
            ``postgresql://user@host/db``.
        fsync: flush every received file to disk before acknowledging it.
        duplicates: a SOP Instance UID received again: ``keep`` the stored one, or
            ``overwrite`` it.
        find_limit: the most matches one C-FIND returns.
        accept_unknown_peers: let peers not in the nodes table echo and store.
        check_peer_host: a known peer must also call from its configured host.
        check_called_aet: refuse associations that do not call our AE title.
        require_user_identity: reject associations that carry no User Identity
            (PS3.7 D.3.3.7) one of ``web.users`` or ``web.tokens`` accepts; without it,
            one that carries none is served on the peer's permissions alone.
        worklist: the Modality Worklist SCP.
        commitment: the Storage Commitment SCP.
    """

    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Path("pacskit-data")
    db: str = ""
    fsync: bool = True
    duplicates: Literal["keep", "overwrite"] = "keep"
    find_limit: Annotated[int, Field(ge=1)] = 10000
    accept_unknown_peers: bool = True
    check_peer_host: bool = False
    check_called_aet: bool = True
    require_user_identity: bool = False
    worklist: WorklistSettings = Field(default_factory=WorklistSettings)
    commitment: CommitmentSettings = Field(default_factory=CommitmentSettings)

    def db_url(self) -> str:
        """The index database URL, SQLite in ``data_dir`` unless ``db`` says otherwise."""
        return self.db or f"sqlite:///{(self.data_dir / 'index.db').resolve()}"


class UserConfig(BaseModel):
    """A user of ``pacskit serve`` (``[web.users.NAME]``), for DICOMweb (HTTP Basic) and
    the User Identity of associations (docs/user-identity.md).

    Attributes:
        password: the user's password (passcode).
        allow: the DIMSE operations the user may ask for, beside the calling peer's
            own ``allow`` (both must permit an operation).
        actions: the web actions the user may take (``delete``, ``send``); none by
            default (docs/web-actions.md).
    """

    model_config = ConfigDict(extra="forbid")

    password: str = Field(repr=False)
    allow: list[Operation] = Field(default_factory=lambda: list(OPERATIONS))
    actions: list[WebAction] = Field(default_factory=list)


class WebSettings(BaseModel):
    """The DICOMweb service (PS3.18) that ``pacskit serve`` runs beside DIMSE.

    Attributes:
        enabled: serve DICOMweb at all.
        port: the HTTP port.
        bind: the address the HTTP server listens on; loopback by default.
        users: the users, name → password, or name → ``{password, allow}``
            (:class:`UserConfig`): for HTTP Basic, and the User Identity of associations.
        tokens: HTTP Bearer tokens, also accepted as the JSON Web Token of a User
            Identity.
        allow_anonymous_remote: listen on a non-loopback address with no users and no
            tokens (every route open to the network).
        cors_origins: origins allowed by CORS (``["*"]`` for any); none by default.
        max_body: the largest STOW-RS request body, in bytes.
        search_limit: the most matches one QIDO-RS response returns (``archive.find_limit``
            too, if lower); past it a Warning header says more can be requested.
        pixel_budget: the most bytes of decoded pixel data one ``/rendered`` or
            ``/frames`` request may make the server decode, as the instance declares
            them; past it, 413 before decoding.
        header_timeout: seconds a client has to send a request's line and headers, from
            its connection or the end of the previous response; then it is closed.
        body_timeout: seconds of grace a request body has after its headers, and
        body_min_rate: the bytes per second it must come at afterwards (its deadline is
            ``body_timeout + received / body_min_rate``); then the connection is closed.
        token_actions: the web actions (``delete``, ``send``) a valid Bearer token may
            take; none by default.
        anonymous_actions: the web actions anyone may take when no users and no tokens
            are configured; none by default (docs/web-actions.md).
        show_patient_names: the web page (at ``/``) shows patient names; by default its
            own searches and metadata withhold them (:mod:`pacskit.web.page`).
        ohif_dir: an unpacked OHIF Viewer build (the ``dist`` folder of the npm package
            ``@ohif/app``) to serve on ``ohif_port`` (:mod:`pacskit.web.ohif`); none by default.
        ohif_port: the HTTP port of the OHIF Viewer; by default the one after ``port``.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    bind: str = "127.0.0.1"
    users: dict[str, str | UserConfig] = Field(default_factory=dict, repr=False)
    tokens: list[str] = Field(default_factory=list, repr=False)
    allow_anonymous_remote: bool = False
    cors_origins: list[str] = Field(default_factory=list)
    max_body: Annotated[int, Field(ge=1)] = 4 << 30
    search_limit: Annotated[int, Field(ge=1)] = 1000
    pixel_budget: Annotated[int, Field(ge=1)] = 64 << 20
    header_timeout: Annotated[float, Field(gt=0)] = 10.0
    body_timeout: Annotated[float, Field(gt=0)] = 20.0
    body_min_rate: Annotated[float, Field(gt=0)] = 500.0
    token_actions: list[WebAction] = Field(default_factory=list)
    anonymous_actions: list[WebAction] = Field(default_factory=list)
    show_patient_names: bool = False
    ohif_dir: Path | None = None
    ohif_port: Annotated[int | None, Field(ge=1, le=65535)] = None

    @property
    def viewer_port(self) -> int | None:
        """The OHIF Viewer's port, if one is served."""
        if self.ohif_dir is None:
            return None
        return self.ohif_port or (self.port + 1 if self.port < 65535 else self.port - 1)

    @property
    def authenticated(self) -> bool:
        """Whether every request must carry credentials."""
        return bool(self.users or self.tokens)

    @property
    def passwords(self) -> dict[str, str]:
        """User name → password."""
        return {name: user if isinstance(user, str) else user.password for name, user in self.users.items()}

    def permissions(self, user: str) -> list[Operation]:
        """The operations ``user`` may ask for (every one for a user given as a bare
        password, or for a token)."""
        entry = self.users.get(user)
        return list(entry.allow) if isinstance(entry, UserConfig) else list(OPERATIONS)

    def actions_of(self, user: str | None) -> list[WebAction]:
        """The web actions ``user`` may take: a user's ``actions``, ``token_actions`` for
        a Bearer token (``user`` is ``(token)``), ``anonymous_actions`` for no user when
        no credentials are configured; none otherwise."""
        if user is None:
            return [] if self.authenticated else list(self.anonymous_actions)
        entry = self.users.get(user)
        if isinstance(entry, UserConfig):
            return list(entry.actions)
        return list(self.token_actions) if user == "(token)" and entry is None else []

    @model_validator(mode="after")
    def _check_exposure(self) -> WebSettings:
        if self.enabled and not self.authenticated and not self.allow_anonymous_remote \
                and not is_loopback(self.bind):
            raise ValueError(f"DICOMweb on {self.bind} without users or tokens would be open to the "
                             "network: configure web.users or web.tokens, bind to 127.0.0.1, or set "
                             "web.allow_anonymous_remote")
        return self


TlsProfile = Literal["bcp195-nd", "bcp195", "bcp195-ex"]


class TlsSettings(BaseModel):
    """DICOM TLS (PS3.15 Annex B, the BCP 195 profiles) and HTTPS (docs/tls.md).

    Attributes:
        certificate: our certificate chain (PEM): shown to TLS servers that ask for a
            client certificate, and by ``pacskit serve``'s TLS listener and HTTPS.
        key: its private key (PEM, unencrypted); the certificate file when unset.
        ca: the certificates (PEM bundle) a peer's certificate must chain to; the
            system's trusted CAs when unset.
        profile: ``bcp195-nd`` (non-downgrading, the default), ``bcp195`` or
            ``bcp195-ex`` (extended), as DCMTK's ``+py``, ``+px`` and ``+pz``.
        always: every association pacskit opens uses TLS (``--tls``); otherwise only
            those with nodes whose ``tls`` is true or whose address is ``dicoms://``.
        check_hostname: a server's certificate must name the host we called (its DNS
            name, or its IP address as an IP subjectAltName).
        require_client_certificate: ``pacskit serve`` (and the C-MOVE listener) admits
            only TLS clients whose certificate chains to ``ca``.
        port: the port of ``pacskit serve``'s TLS listener (none when unset).
        plain: ``pacskit serve`` still listens without TLS on ``port`` beside it.
        https: ``pacskit serve``'s DICOMweb is HTTPS, with ``certificate`` and ``key``.
        insecure: as a DICOMweb client, do not verify the server's certificate
            (``--insecure``); DIMSE always verifies it.
    """

    model_config = ConfigDict(extra="forbid")

    certificate: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    profile: TlsProfile = "bcp195-nd"
    always: bool = False
    check_hostname: bool = True
    require_client_certificate: bool = True
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    plain: bool = True
    https: bool = False
    insecure: bool = False

    @model_validator(mode="after")
    def _check_server(self) -> TlsSettings:
        if (self.port is not None or self.https) and self.certificate is None:
            raise ValueError("a TLS listener (tls.port) or HTTPS (tls.https) needs tls.certificate")
        return self


class IdentitySettings(BaseModel):
    """The User Identity pacskit sends on every association it opens (PS3.7 D.3.3.7;
    ``--user``, ``--password``, ``--token``, ``--identity-response``), over any a node
    of the table has.

    Attributes:
        user: the user name (type 1; type 2 with ``password``).
        password: its passcode.
        token: a JSON Web Token (type 5), sent instead of a user name.
        response: require the peer's positive response (fail without one).
    """

    model_config = ConfigDict(extra="forbid")

    user: str | None = None
    password: str | None = Field(default=None, repr=False)
    token: str | None = Field(default=None, repr=False)
    response: bool = False

    @model_validator(mode="after")
    def _check_user(self) -> IdentitySettings:
        if self.password and not self.user:
            raise ValueError("a password (--password) needs a user name (--user)")
        return self


class AuditSettings(BaseModel):
    """The audit trail of ``pacskit serve`` (docs/audit.md).

    Attributes:
        file: where its JSON lines go: a file (appended to), ``-`` for standard
            error, or empty (the default) for no audit trail.
    """

    model_config = ConfigDict(extra="forbid")

    file: str = ""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every pacskit setting, with its default.

    Attributes:
        ae_title: our own AE title (Calling AE Title; the Storage SCP's title).
        port: the port our Storage SCP (C-MOVE to self) and ``serve`` listen on.
        bind_address: the address those listen on.
        max_pdu: the largest P-DATA-TF PDU we accept (0 = no limit).
        acse_timeout: seconds to wait for association accept/reject/release answers.
        dimse_timeout: seconds to wait for each DIMSE message (per message, not per retrieve).
        network_timeout: seconds without any network activity before the association aborts.
        connect_timeout: seconds to wait for the TCP connection.
        conversion_timeout: seconds a conversion in the child process of a pixel-free
            command (:mod:`pacskit.conversion`) may take before the child is killed and
            that one file fails; unset, the DIMSE timeout (the peer waits that long for
            the C-STORE request too).
        max_connections: TCP connections our acceptors (``serve``, the C-MOVE storage
            SCP) hold at once, associations being negotiated included; more are refused
            as they are accepted.
        max_connections_per_address: the same, from any one IP address.
        client_max_connections: associations one :class:`~pacskit.aio.AsyncClient` holds
            open at once with any one peer address (host and port, as given), from the
            TCP connection to its close; more calls wait their turn, first come, first
            served (``AsyncClient(max_connections=...)`` overrides it).
        max_associations: associations served at once, counted once their
            A-ASSOCIATE-RQ is complete; more are rejected (A-ASSOCIATE-RJ, transient,
            local limit exceeded).
        memory_budget: bytes all associations of an acceptor together may hold in
            memory (PDUs being read, request identifiers); a request over it is refused
            (0 = no limit).
        max_search_answer: the most bytes of QIDO-RS answers pacskit reads for one search
            (all its pages together) as a DICOMweb client; past it the search fails.
        allow_patient_names: opt in to requesting, showing and writing patient names.
        retries: the library's attempts after a first one that failed for a transient
            reason (:mod:`pacskit.retry`); 0 (the default, and the CLI's) tries once.
        retry_backoff: seconds before the first retry, doubled for each next one.
        nodes: the named remote nodes.
        archive: the archive of ``pacskit serve``.
        web: the DICOMweb service of ``pacskit serve``.
        tls: DICOM TLS and HTTPS, both roles.
        identity: the User Identity sent on every association opened.
        audit: the audit trail of ``pacskit serve``.
        move_bind_address: the address the C-MOVE-to-ourselves listener binds to;
            empty: the address of our interface towards the peer asked to move.
        move_check_peer: that listener admits only the peer asked to move (its AE title
            as calling AE title, from its address); off for a PACS whose C-STORE
            sub-associations come from another AE title or host.
        deidentify: the secret and options of de-identification (``--deidentify``).
    """

    model_config = SettingsConfigDict(
        env_prefix="PACSKIT_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    ae_title: str = "PACSKIT"
    port: Annotated[int, Field(ge=1, le=65535)] = 11112
    bind_address: str = "0.0.0.0"
    max_pdu: Annotated[int, Field(ge=0)] = 262144
    acse_timeout: Annotated[float, Field(gt=0)] = 30.0
    dimse_timeout: Annotated[float, Field(gt=0)] = 60.0
    network_timeout: Annotated[float, Field(gt=0)] = 120.0
    connect_timeout: Annotated[float, Field(gt=0)] = 10.0
    conversion_timeout: Annotated[float, Field(gt=0)] | None = None
    max_connections: Annotated[int, Field(ge=1)] = 128
    max_connections_per_address: Annotated[int, Field(ge=1)] = 64
    client_max_connections: Annotated[int, Field(ge=1)] = 16
    max_associations: Annotated[int, Field(ge=1)] = 64
    memory_budget: Annotated[int, Field(ge=0)] = 256 << 20
    max_search_answer: Annotated[int, Field(ge=1)] = 64 << 20
    allow_patient_names: bool = False
    retries: Annotated[int, Field(ge=0, le=20)] = 0
    retry_backoff: Annotated[float, Field(ge=0)] = 0.5
    nodes: dict[str, NodeConfig] = Field(default_factory=dict)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    move_bind_address: str = ""
    move_check_peer: bool = True
    deidentify: DeidentifySettings = Field(default_factory=DeidentifySettings)

    @field_validator("ae_title")
    @classmethod
    def _check_ae_title(cls, value: str) -> str:
        try:
            return validate_ae_title(value)
        except InvalidAddress as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _config_file_source(settings_cls))

    @classmethod
    def load(cls, config_file: Path | str | None = None, **overrides: Any) -> Settings:
        """Read settings: the TOML file, then the environment, then ``overrides``.

        ``overrides`` whose value is ``None`` are ignored, so CLI flags that were not
        given fall through to the lower layers.

        Raises:
            ConfigError: the file cannot be read or parsed, or a value is invalid.
        """
        path = Path(config_file) if config_file else _default_file(cls)
        token = _chosen_file.set((path,))
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            raise ConfigError(_describe(exc, path)) from None
        finally:
            _chosen_file.reset(token)

    def resolve_node(self, name_or_address: str) -> Node:
        """Turn a node name from the table, or an inline ``dicom://`` address, into a Node.

        Raises:
            UnknownNode: the name is not in the table.
            InvalidAddress: the inline address is malformed.
        """
        if is_web_address(name_or_address):
            raise InvalidAddress(f"{url_without_credentials(name_or_address)!r} is a DICOMweb URL; this command "
                                 "needs a DICOM node (a name, or dicom://AET@host:port)")
        if is_inline_address(name_or_address):
            return Node.parse(name_or_address)
        entry = self.nodes.get(name_or_address)
        if entry is None:
            known = ", ".join(sorted(self.nodes)) or "none configured"
            raise UnknownNode(f"unknown node {name_or_address!r} (known: {known})")
        if not entry.ae_title or not entry.host:
            raise ConfigError(f"node {name_or_address!r} has no DICOM address (ae_title, host): "
                              "it is reached over DICOMweb only")
        return Node.create(name=name_or_address, ae_title=entry.ae_title, host=entry.host,
                           port=entry.port, dicomweb_url=entry.dicomweb_url, tls=entry.tls,
                           username=entry.username, password=entry.password, token=entry.token,
                           identity_response=entry.identity_response)


def find_config_file() -> Path | None:
    """The config file in force: ``PACSKIT_CONFIG``, ``./pacskit.toml``, the user one.

    Raises:
        ConfigError: ``PACSKIT_CONFIG`` names a file that does not exist.
    """
    explicit = os.environ.get("PACSKIT_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"PACSKIT_CONFIG names {path}, which is not a file")
        return path
    local = Path.cwd() / CONFIG_FILE_NAME
    if local.is_file():
        return local
    user = user_config_dir() / CONFIG_FILE_NAME
    return user if user.is_file() else None


def user_config_dir() -> Path:
    """``$XDG_CONFIG_HOME/pacskit``, or ``~/.config/pacskit``."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "pacskit"


def _default_file(settings_cls: type[BaseSettings]) -> Path | None:
    named = settings_cls.model_config.get("toml_file")
    if isinstance(named, str | Path):
        return Path(named) if Path(named).is_file() else None
    return find_config_file()


def _config_file_source(settings_cls: type[BaseSettings]) -> PydanticBaseSettingsSource:
    """The config file's values (lowest priority): the file :meth:`Settings.load` was
    given, else the subclass's ``toml_file`` if it exists, else :func:`find_config_file`'s.

    Raises:
        ConfigError: the file cannot be read or is not valid TOML.
    """
    chosen = _chosen_file.get()
    path = chosen[0] if chosen is not None else _default_file(settings_cls)
    if path is not None and not path.is_file():
        raise ConfigError(f"cannot read {path}: no such file")
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _describe(exc: ValidationError, path: Path | None) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    origin = f" (in {path} or PACSKIT_* environment)" if path else ""
    message = first["msg"].removeprefix("Value error, ")
    return f"invalid setting {where}: {message}{origin}"
