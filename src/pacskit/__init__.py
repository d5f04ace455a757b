"""pacskit: find, retrieve, store and serve DICOM — without ever fetching patient names."""

from importlib.metadata import PackageNotFoundError, version

from pacskit.aio import AsyncClient
from pacskit.client import Client
from pacskit.models import EchoResult
from pacskit.nodes import Node
from pacskit.settings import Settings

try:
    __version__ = version("pacskit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["AsyncClient", "Client", "EchoResult", "Node", "Settings", "__version__"]
