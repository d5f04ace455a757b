"""What FROM and TO of a copy name: a node, a DICOMweb server, the archive or a folder,
opened as a :class:`~pacskit.transfer.Source` or a :class:`~pacskit.sinks.Sink`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pacskit.errors import UsageError
from pacskit.layout import DEFAULT_LAYOUT, Layout
from pacskit.nodes import Node, is_inline_address
from pacskit.query import InformationModel, Level, Query
from pacskit.sources import ARCHIVE
from pacskit.transfer import DimseSource, LocalSource, Source, WebSource

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pacskit.client import Client
    from pacskit.deid import Deidentifier
    from pacskit.sinks import Finder, Sink


def place(client: Client, name: Node | str | Path, *, as_source: bool) -> tuple[str, ...]:
    """What ``name`` is, as a key two names of the same place share: (``"web"``, url),
    (``"archive"``,), (``"dimse"``, AE title, host, port) or (``"folder"``, real path).

    Raises:
        UnknownNode, InvalidAddress: a node that cannot be resolved.
    """
    if isinstance(name, Node):
        return ("dimse", name.ae_title, name.host, str(name.port))
    if isinstance(name, Path):
        return ("folder", os.path.realpath(name))
    web = client.web_node(name)
    if web is not None:
        return ("web", web.url.rstrip("/"))
    if name == ARCHIVE:
        return ("archive",)
    if is_inline_address(name) or name in client.settings.nodes and not (as_source and Path(name).exists()):
        node = client.node(name)
        return ("dimse", node.ae_title, node.host, str(node.port))
    return ("folder", os.path.realpath(name))


def open_source(client: Client, name: Node | str | Path, method: str, *, wado_uri: bool = False) -> Source:
    """The source ``name`` names (a DICOMweb server read by WADO-URI with ``wado_uri``).

    Raises:
        UnknownNode, InvalidAddress: a node that cannot be resolved.
        InputError: a folder that does not exist or holds no DICOM file.
        ConfigError: the archive's index cannot be opened.
    """
    from pacskit.errors import InputError

    kind = place(client, name, as_source=True)
    if kind[0] == "web":
        web = client.web_node(str(name))
        assert web is not None
        return WebSource(client, web, wado_uri)
    if wado_uri:
        raise UsageError(f"--wado-uri reads from a DICOMweb server; {name} is not one")
    if kind[0] == "dimse":
        return DimseSource(client, client.node(name if not isinstance(name, Path) else str(name)), method)
    if kind[0] == "folder" and not Path(kind[1]).is_dir():
        raise InputError(f"{name} is not a folder, a node or a DICOMweb URL")
    return LocalSource(client, ARCHIVE if kind[0] == "archive" else str(name))


def open_sink(client: Client, name: Node | str | Path, *, layout: str = DEFAULT_LAYOUT, overwrite: bool = False,
              deidentifier: Deidentifier | None = None) -> Sink:
    """The sink ``name`` names, behind its filters: the privacy policy on the client side
    (a folder, the archive), de-identification when ``deidentifier`` is given.

    Raises:
        UnknownNode, InvalidAddress: a node that cannot be resolved.
        UsageError: an invalid layout, or one with a withheld patient name.
        ConfigError: the archive's index cannot be opened.
    """
    from pacskit.sinks import (
        ArchiveSink,
        DimseSink,
        Filtered,
        FolderDestination,
        Names,
        WebSink,
        deid_filter,
    )

    kind = place(client, name, as_source=False)
    filters = [] if deidentifier is None else [deid_filter(deidentifier)]
    if kind[0] == "folder":
        return FolderDestination(Path(name) if not isinstance(name, Node) else Path(str(name)), Layout(layout),
                                 overwrite=overwrite, privacy=client.privacy, deidentifier=deidentifier)
    if kind[0] == "archive":
        return Filtered(ArchiveSink(client.settings.archive, names=Names.withheld, privacy=client.privacy), filters)
    if kind[0] == "web":
        web = client.web_node(str(name))
        assert web is not None
        return Filtered(WebSink(client._web_client(web), _finder(client, web.url)), filters)
    node = client.node(name if not isinstance(name, Path) else str(name))
    return Filtered(DimseSink(client.settings, node, _finder(client, node)), filters)


def refuse_same(client: Client, source: Node | str | Path, destination: Node | str | Path) -> None:
    """Raises UsageError when ``source`` and ``destination`` are the same place."""
    if place(client, source, as_source=True) == place(client, destination, as_source=False):
        raise UsageError(f"FROM and TO are the same place ({source}): nothing to copy")


def holdings_query(match: dict[str, str], limit: int | None) -> Query:
    """The IMAGE-level search asking a destination which instances it holds under
    ``match`` (unique keys), at most ``limit`` of them (a :data:`~pacskit.sinks.Finder`)."""
    model = InformationModel.PATIENT_ROOT if "StudyInstanceUID" not in match else InformationModel.STUDY_ROOT
    return Query(level=Level.IMAGE, model=model, match=match, limit=limit)


def _finder(client: Client, node: Node | str) -> Finder:
    def held(match: dict[str, str], limit: int | None) -> Iterator[str]:
        for found in client.source_search(node, holdings_query(match, limit)):
            yield str(found.get("SOPInstanceUID", "") or "")
    return held
