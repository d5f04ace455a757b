"""pacskit: find, retrieve, store and serve DICOM — without ever fetching patient names.

The public names are imported on first use, so that ``import pacskit`` (and the command
line's start) costs nothing until they are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacskit.lazy_names import lazy_getattr

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pacskit.aio import AsyncClient
    from pacskit.client import Client
    from pacskit.echo_result import EchoResult
    from pacskit.level_queries import InstanceQuery, PatientQuery, SeriesQuery, StudyQuery
    from pacskit.models import MoveResult, RetrieveResult
    from pacskit.nodes import Node
    from pacskit.query import Query
    from pacskit.results import InstanceResult, PatientResult, SeriesResult, StudyResult
    from pacskit.settings import Settings

_HOMES = {
    "AsyncClient": "pacskit.aio",
    "Client": "pacskit.client",
    "EchoResult": "pacskit.echo_result",
    "InstanceQuery": "pacskit.level_queries",
    "InstanceResult": "pacskit.results",
    "MoveResult": "pacskit.models",
    "Node": "pacskit.nodes",
    "PatientQuery": "pacskit.level_queries",
    "PatientResult": "pacskit.results",
    "Query": "pacskit.query",
    "RetrieveResult": "pacskit.models",
    "SeriesQuery": "pacskit.level_queries",
    "SeriesResult": "pacskit.results",
    "Settings": "pacskit.settings",
    "StudyQuery": "pacskit.level_queries",
    "StudyResult": "pacskit.results",
}


__getattr__ = lazy_getattr(__name__, _HOMES)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


__all__ = ["AsyncClient", "Client", "EchoResult", "InstanceQuery", "InstanceResult", "MoveResult", "Node",
           "PatientQuery", "PatientResult", "Query", "RetrieveResult", "SeriesQuery", "SeriesResult",
           "Settings", "StudyQuery", "StudyResult", "__version__"]
