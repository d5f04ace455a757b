"""`pacskit serve` for a test: an archive on free loopback ports (DIMSE and DICOMweb),
holding the files it is given."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pacskit import Node
from pacskit.archive import Archive
from pacskit.archive.maintenance import import_files
from pacskit.settings import ArchiveSettings, NodeConfig, Settings, WebSettings
from pacskit.testing.peers import free_port

ARCHIVE_AET = "ARCHIVE"
CLIENT_NODES = {"pacskit": NodeConfig(ae_title="PACSKIT", host="127.0.0.1", port=1)}
"""The nodes table of an archive that lets pacskit (AE title PACSKIT) find and retrieve."""


@contextmanager
def served_archive(workdir: Path, files: Iterable[Path], *, web: dict[str, Any] | None = None,
                   **overrides: Any) -> Iterator[Archive]:
    """An archive under ``workdir`` holding ``files`` (imported; none may be given), serving DIMSE and DICOMweb,
    with the other settings (timeouts, say) given by ``overrides``, and ``web``'s (WebSettings fields)."""
    settings = Settings(ae_title=ARCHIVE_AET, port=free_port(), bind_address="127.0.0.1",
                        archive=ArchiveSettings(data_dir=workdir / "archive", fsync=False),
                        web=WebSettings(port=free_port(), **(web or {})), **overrides)
    with Archive(settings) as archive:
        archive.start()
        files = list(files)
        if files:
            result = import_files(archive.ingest, files)
            assert not result.failed, result
        yield archive


def web_url(archive: Archive) -> str:
    """The archive's DICOMweb root."""
    return f"http://127.0.0.1:{archive.settings.web.port}/dicom-web"


def dimse_node(archive: Archive) -> Node:
    """The archive as a DIMSE node."""
    return Node(ae_title=ARCHIVE_AET, host="127.0.0.1", port=archive.settings.port)
