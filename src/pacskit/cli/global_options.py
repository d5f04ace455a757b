"""The root options (``--aet``, ``--port``, timeouts, ``-v``, ``--config``), accepted before
the command and after it alike, as DCMTK users write them (``findscu -aet ME host port``).

Each command gets the same options as the ``pacskit`` callback by :func:`with_global_options`,
which adds them to the command's signature, so Typer parses and lists them (under "Global
options" in ``--help``) like the command's own. A value given after the command overrides one
given before it; either overrides the environment and pacskit.toml.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from pacskit.cli.log_setup import configure

PANEL = "Global options"

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="pacskit.toml to use.", rich_help_panel=PANEL)]
AeTitleOption = Annotated[str | None, typer.Option("--aet", help="Our AE title (calling AE).", rich_help_panel=PANEL)]
PortOption = Annotated[int | None, typer.Option("--port", help="Our storage SCP port.", rich_help_panel=PANEL)]
MaxPduOption = Annotated[int | None, typer.Option("--max-pdu", help="Largest PDU we accept, bytes (0: no limit).", rich_help_panel=PANEL)]
AcseTimeoutOption = Annotated[float | None, typer.Option("--acse-timeout", help="Association timeout, s.", rich_help_panel=PANEL)]
DimseTimeoutOption = Annotated[float | None, typer.Option("--dimse-timeout", help="Per-message DIMSE timeout, s.", rich_help_panel=PANEL)]
NetworkTimeoutOption = Annotated[float | None, typer.Option("--network-timeout", help="Idle network timeout, s.", rich_help_panel=PANEL)]
ConnectTimeoutOption = Annotated[float | None, typer.Option("--connect-timeout", help="TCP connect timeout, s.", rich_help_panel=PANEL)]
VerboseOption = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).", rich_help_panel=PANEL)]

TLS_PANEL = "TLS options"


class Profile(str, Enum):
    """The BCP 195 TLS profiles (PS3.15 B.9-B.11), as DCMTK's +py, +px, +pz."""

    bcp195_nd = "bcp195-nd"
    bcp195 = "bcp195"
    bcp195_ex = "bcp195-ex"


TlsOption = Annotated[bool | None, typer.Option("--tls/--no-tls", help="DICOM TLS on every association opened (dicoms:// and tls = true nodes use it anyway).", rich_help_panel=TLS_PANEL, show_default=False)]
TlsCertOption = Annotated[Path | None, typer.Option("--tls-cert", help="Our certificate (PEM).", rich_help_panel=TLS_PANEL)]
TlsKeyOption = Annotated[Path | None, typer.Option("--tls-key", help="Our private key (PEM); the certificate file if not given.", rich_help_panel=TLS_PANEL)]
TlsCaOption = Annotated[Path | None, typer.Option("--tls-ca", help="CA certificates (PEM) a peer's certificate must chain to.", rich_help_panel=TLS_PANEL)]
TlsProfileOption = Annotated[Profile | None, typer.Option("--tls-profile", help="bcp195-nd (default), bcp195 or bcp195-ex.", rich_help_panel=TLS_PANEL, show_default=False)]
InsecureOption = Annotated[bool | None, typer.Option("--insecure", help="DICOMweb over HTTPS: do not verify the server's certificate.", rich_help_panel=TLS_PANEL, show_default=False)]

TLS_OPTIONS: dict[str, Any] = {
    "always": TlsOption,
    "certificate": TlsCertOption,
    "key": TlsKeyOption,
    "ca": TlsCaOption,
    "profile": TlsProfileOption,
    "insecure": InsecureOption,
}
"""The ``[tls]`` settings each command takes as flags (``--tls`` is ``tls.always``)."""

IDENTITY_PANEL = "User identity options"
UserOption = Annotated[str | None, typer.Option("--user", help="User Identity sent on each association: this user name (PS3.7 D.3.3.7).", rich_help_panel=IDENTITY_PANEL, show_default=False)]
PasswordOption = Annotated[str | None, typer.Option("--password", help="Its password (PACSKIT_IDENTITY__PASSWORD keeps it off the command line).", rich_help_panel=IDENTITY_PANEL, show_default=False)]
TokenOption = Annotated[str | None, typer.Option("--token", help="A JSON Web Token sent as User Identity instead (or PACSKIT_IDENTITY__TOKEN).", rich_help_panel=IDENTITY_PANEL, show_default=False)]
PosResponseOption = Annotated[bool | None, typer.Option("--pos-response", help="Require the peer's positive response to the User Identity.", rich_help_panel=IDENTITY_PANEL, show_default=False)]

IDENTITY_OPTIONS: dict[str, Any] = {
    "user": UserOption,
    "password": PasswordOption,
    "token": TokenOption,
    "response": PosResponseOption,
}
"""The ``[identity]`` settings each command takes as flags."""

BLOCK_OPTIONS: dict[str, dict[str, Any]] = {"tls": TLS_OPTIONS, "identity": IDENTITY_OPTIONS}
"""The settings blocks whose fields are flags: ``--tls-cert`` is ``tls.certificate``."""

SETTING_OPTIONS: dict[str, Any] = {
    "ae_title": AeTitleOption,
    "port": PortOption,
    "max_pdu": MaxPduOption,
    "acse_timeout": AcseTimeoutOption,
    "dimse_timeout": DimseTimeoutOption,
    "network_timeout": NetworkTimeoutOption,
    "connect_timeout": ConnectTimeoutOption,
}
PREFIX = "global_"

F = TypeVar("F", bound=Callable[..., Any])


def set_verbosity(verbose: int) -> None:
    """Log pacskit to standard error at WARNING, INFO (``-v``: the association and each
    DIMSE message) or DEBUG (``-vv`` and more: each context, command set, identifier and
    PDU), DCMTK style (``I: ...``); see :mod:`pacskit.cli.log_setup`."""
    configure(verbose)


def with_global_options(command: F) -> F:
    """``command`` taking the root options too; those given are merged into the
    :class:`~pacskit.cli.common.State` of the root callback before ``command`` runs.
    ``command`` must take a ``ctx: typer.Context``."""
    from pacskit.cli.common import state

    signature = inspect.signature(command, eval_str=True)
    added = {
        f"{PREFIX}config": ConfigOption,
        **{f"{PREFIX}{name}": option for name, option in SETTING_OPTIONS.items()},
        **{f"{PREFIX}{block}_{name}": option for block, options in BLOCK_OPTIONS.items()
           for name, option in options.items()},
    }
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=None)
             for name, option in added.items()]
    extra.append(inspect.Parameter(f"{PREFIX}verbose", inspect.Parameter.KEYWORD_ONLY,
                                   annotation=VerboseOption, default=0))

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx") or next(a for a in args if isinstance(a, typer.Context))
        root = state(ctx)
        config = kwargs.pop(f"{PREFIX}config")
        if config is not None:
            root.config_file = config
        for name in SETTING_OPTIONS:
            value = kwargs.pop(f"{PREFIX}{name}")
            if value is not None:
                root.overrides[name] = value
        for block, options in BLOCK_OPTIONS.items():
            for name in options:
                value = kwargs.pop(f"{PREFIX}{block}_{name}")
                if value is not None:
                    root.overrides.setdefault(block, {})[name] = value.value if isinstance(value, Enum) else value
        verbose = kwargs.pop(f"{PREFIX}verbose")
        if verbose:
            root.verbose += verbose
            set_verbosity(root.verbose)
        return command(*args, **kwargs)

    parameters = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    run.__signature__ = signature.replace(parameters=[*parameters, *extra])  # type: ignore[attr-defined]
    run.__annotations__ = {**{p.name: p.annotation for p in parameters}, **{p.name: p.annotation for p in extra}}
    del run.__wrapped__
    return run  # type: ignore[return-value]
