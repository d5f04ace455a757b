"""Where each setting in force comes from: its default, the TOML file, a ``PACSKIT_*``
environment variable or a command-line option — with secrets masked (pure)."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pacskit.settings import Settings

ENV_PREFIX = "PACSKIT_"
MASK = "****"
SECRET_NAMES = frozenset({"password", "token", "tokens", "secret"})
"""Setting names whose values are secrets wherever they occur (nodes.*.password, web.tokens)."""
SECRET_MAPS = frozenset({"web.users"})
"""Tables of name → secret: the names are shown, the secrets masked."""
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]*@", re.IGNORECASE)
_CLI_NAMES = {"ae_title": "--aet", "tls.always": "--tls", "tls.certificate": "--tls-cert",
              "tls.key": "--tls-key", "tls.ca": "--tls-ca", "tls.profile": "--tls-profile",
              "tls.insecure": "--insecure"}


@dataclass(frozen=True)
class SettingOrigin:
    """One setting in force: dotted ``name``, ``value`` (secrets masked) and ``source``."""

    name: str
    value: Any
    source: str


def setting_origins(settings: Settings, config_file: Path | None, environ: Mapping[str, str],
                    overrides: Mapping[str, Any]) -> list[SettingOrigin]:
    """Every leaf setting of ``settings`` with where it came from: ``option --aet`` (one of
    ``overrides``, the command line), ``env PACSKIT_WEB__PORT``, ``file PATH`` or ``default``
    (the precedence of :meth:`Settings.load`)."""
    given = {name for name, value in _leaves(_given(overrides)) if value is not None}
    env = _env_names(environ)
    in_file = {name for name, _ in _leaves(_read(config_file))}
    origins = []
    for name, value in _leaves(settings.model_dump(mode="json")):
        if name in given:
            source = f"option {_CLI_NAMES.get(name, '--' + name.replace('_', '-'))}"
        elif (variable := _covering(name, env)) is not None:
            source = f"env {variable}"
        elif _covering(name, {n: n for n in in_file}) is not None:
            source = f"file {config_file}"
        else:
            source = "default"
        origins.append(SettingOrigin(name, masked(name, value), source))
    return origins


def masked(name: str, value: Any) -> Any:
    """``value`` with the secrets of setting ``name`` replaced by ``****``: passwords,
    tokens, the passwords of ``web.users`` and of a URL's user information."""
    last = name.rsplit(".", 1)[-1]
    if value in (None, "", [], {}):
        return value
    if last in SECRET_NAMES:
        return [MASK for _ in value] if isinstance(value, list) else MASK
    if name in SECRET_MAPS and isinstance(value, dict):
        return {key: MASK for key in value}
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<head>{MASK}@", value)
    return value


def value_text(value: Any) -> str:
    """``value`` as one line: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _given(overrides: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in overrides.items() if v is not None and v != {}}


def _leaves(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and name not in SECRET_MAPS:
            yield from _leaves(value, f"{name}.")
        else:
            yield name, value


def _env_names(environ: Mapping[str, str]) -> dict[str, str]:
    """Setting name → the variable that sets it (``PACSKIT_WEB__PORT`` → ``web.port``)."""
    names = {}
    for variable in environ:
        if variable.upper().startswith(ENV_PREFIX) and variable.upper() != "PACSKIT_CONFIG":
            names[variable[len(ENV_PREFIX):].lower().replace("__", ".")] = variable
    return names


def _covering(name: str, sources: Mapping[str, str]) -> str | None:
    """The source of ``name`` or of a table holding it (``nodes`` covers ``nodes.pacs.port``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        found = sources.get(".".join(parts[:end]))
        if found is not None:
            return found
    return None


def _read(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)
