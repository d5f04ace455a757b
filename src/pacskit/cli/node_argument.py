"""The NODE argument of every command that talks to a peer, completed by the shell from the
node names of the configuration in force (``--config``, ``PACSKIT_CONFIG``, ./pacskit.toml)."""

from __future__ import annotations

from typing import Annotated

import typer


def complete_node(ctx: typer.Context, incomplete: str) -> list[str]:
    """The configured node names starting with ``incomplete``; none when the configuration
    cannot be read (completion never prints an error)."""
    from pacskit.settings import Settings

    try:
        nodes = Settings.load(ctx.find_root().params.get("config")).nodes
    except Exception:  # noqa: BLE001 - a broken configuration completes nothing
        return []
    return sorted(name for name in nodes if name.startswith(incomplete))


DimseNode = Annotated[str, typer.Argument(help="Node name or dicom://AET@host:port.", autocompletion=complete_node)]
AnyNode = Annotated[str, typer.Argument(
    help="Node name, dicom://AET@host:port, or a DICOMweb URL http(s)://host/path.", autocompletion=complete_node)]
