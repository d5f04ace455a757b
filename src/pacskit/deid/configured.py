"""The de-identifier the settings and a command ask for, if any."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pacskit.deid.profile import Deidentifier
    from pacskit.nodes import Node
    from pacskit.settings import Settings


def configured_deidentifier(settings: Settings, node: Node | str | None, asked: bool = False,
                            options: Iterable[str] = ()) -> Deidentifier | None:
    """A :class:`Deidentifier` when ``asked`` (``--deidentify``), when ``options`` are
    given, or when ``node`` is configured with ``deidentify = true`` (then always); its
    options are ``deidentify.options`` and ``options``. None otherwise.

    Raises:
        DeidentificationSecretMissing: de-identification is wanted and no secret is set.
        UsageError: an unknown or contradictory option.
    """
    options = tuple(options)
    name = node if isinstance(node, str) else node.name if node is not None else None
    entry = settings.nodes.get(name) if name else None
    if not (asked or options or (entry is not None and entry.deidentify)):
        return None
    from pacskit.deid.options import parse_options
    from pacskit.deid.profile import Deidentifier

    chosen = parse_options([*settings.deidentify.options, *options])
    return Deidentifier(settings.deidentify.secret_bytes(), chosen)
