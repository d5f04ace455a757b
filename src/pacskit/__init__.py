"""pacskit: find, retrieve, store and serve DICOM — without ever fetching patient names."""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from pacskit.client import Client
from pacskit.models import EchoResult
from pacskit.nodes import Node
from pacskit.settings import Settings

try:
    __version__ = version("pacskit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from pacskit.aio import AsyncClient


def __getattr__(name: str) -> Any:
    if name == "AsyncClient":  # asyncio only for those who use it
        from pacskit.aio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module 'pacskit' has no attribute {name!r}")


__all__ = ["AsyncClient", "Client", "EchoResult", "Node", "Settings", "__version__"]
