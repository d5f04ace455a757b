"""The NODE argument of every command that talks to a peer, completed by the shell from the
node names of the configuration in force (``--config``, ``PACSKIT_CONFIG``, ./pacskit.toml);
the FROM and TO of ``copy`` also by ``archive`` and folder names."""

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


def complete_place(ctx: typer.Context, incomplete: str) -> list[str]:
    """What FROM and TO of ``copy`` may be: the configured node names, ``archive`` and the
    folders, each starting with ``incomplete``."""
    import os

    folder, _, start = incomplete.rpartition("/")
    prefix = f"{folder}/" if folder or incomplete.startswith("/") else ""
    try:
        names = sorted(e.name for e in os.scandir(prefix or ".") if e.is_dir() and e.name.startswith(start)
                       and (start or not e.name.startswith(".")))
    except OSError:
        names = []
    folders = [f"{prefix}{name}/" for name in names]
    archive = ["archive"] if "archive".startswith(incomplete) else []
    return [*complete_node(ctx, incomplete), *archive, *folders]


DimseNode = Annotated[str, typer.Argument(help="Node name or dicom://AET@host:port.", autocompletion=complete_node)]
AnyNode = Annotated[str, typer.Argument(
    help="Node name, dicom://AET@host:port, or a DICOMweb URL http(s)://host/path.", autocompletion=complete_node)]


PLACE_HELP = "Node name, dicom://AET@host:port, DICOMweb URL, 'archive' or a folder."
