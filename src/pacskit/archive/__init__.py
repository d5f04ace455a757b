"""The archive behind ``pacskit serve``: an index database, a storage folder, one ingest
path, and the DIMSE services over them."""

from pacskit.archive.index import Index, StoredInstance
from pacskit.archive.ingest import Ingest, Received
from pacskit.archive.server import Archive

__all__ = ["Archive", "Index", "Ingest", "Received", "StoredInstance"]
