"""Local sources for ``find``: the archive's index (``archive``) and a folder of files.

Both answer a :class:`~pacskit.query.Query` exactly as a PACS would: a folder is indexed
into a temporary index of the archive's kind (headers only, files left where they are),
so that a search in a file follows the same PS3.4 rules as a search in the archive or
over the network.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread

from pacskit.errors import InputError
from pacskit.query import Level, Query
from pacskit.scan import scan
from pacskit.settings import Settings

ARCHIVE = "archive"


def is_local_source(name: str) -> bool:
    """Whether ``name`` names a local source: ``archive``, or an existing folder or file."""
    return name == ARCHIVE or "://" not in name and Path(name).exists()


def find_local(settings: Settings, name: str, query: Query, keys: list[str]) -> Iterator[Dataset]:
    """The matches of ``query`` in the archive or under the folder ``name``, with
    ``keys`` returned.

    Raises:
        ConfigError: the archive's index cannot be opened.
        InputError: the folder holds no DICOM file.
    """
    with _opened(settings, name) as (index, _):
        yield from index.find(query, keys=keys)


def local_files(settings: Settings, name: str, query: Query) -> Iterator[Path]:
    """The files of the instances ``query`` matches in the archive or under the folder
    ``name``, at any level: what a retrieve from it brings.

    Raises:
        ConfigError: the archive's index cannot be opened.
        InputError: the folder holds no DICOM file.
    """
    instances = query.model_copy(update={"level": Level.IMAGE, "return_keys": (), "limit": None})
    with _opened(settings, name) as (index, root):
        for match in index.find(instances, keys=["SOPInstanceUID"]):
            path = index.path_of(str(match.get("SOPInstanceUID", "")))
            if path is not None:
                yield root / path


@contextmanager
def _opened(settings: Settings, name: str) -> Iterator[tuple[Any, Path]]:
    from pacskit.archive.index import Index  # SQLAlchemy only for the commands that need it

    if name == ARCHIVE:
        index = Index.open(settings.archive.db_url())
        try:
            yield index, settings.archive.data_dir / "files"
        finally:
            index.close()
        return
    with tempfile.TemporaryDirectory(prefix="pacskit-find-") as scratch:
        index = Index.open(f"sqlite:///{scratch}/index.db")
        try:
            index_folder(index, Path(name))
            yield index, Path()
        finally:
            index.close()


def index_folder(index: Any, folder: Path) -> int:
    """Index the headers of the DICOM files under ``folder`` (paths as they are); how
    many files were passed over (not DICOM, or unreadable).

    Raises:
        InputError: the folder holds no DICOM file.
    """
    found = scan([folder])
    if not found.files:
        raise InputError(f"no DICOM file under {folder} ({found.not_dicom} other files)")
    skipped = found.not_dicom
    for item in found.files:
        try:
            header = dcmread(item.path, stop_before_pixels=True)
            index.add(header, path=str(item.path), size=item.size, transfer_syntax=item.transfer_syntax)
        except Exception:  # noqa: BLE001 - a file pydicom cannot read is not part of the answer
            skipped += 1
    return skipped
