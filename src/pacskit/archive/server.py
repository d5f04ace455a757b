"""Running the archive: the index opened once, the ingest path, the DIMSE server."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from pacskit.archive.index import Index
from pacskit.archive.ingest import Ingest
from pacskit.archive.scp import ArchiveSCP
from pacskit.net.acceptor import Acceptor
from pacskit.settings import Settings

LOG = logging.getLogger("pacskit.archive")


class Archive:
    """The archive of ``settings``: open it, :meth:`start` serving, :meth:`close`.

    Raises:
        ConfigError: on construction, when the index cannot be opened.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.archive.data_dir.mkdir(parents=True, exist_ok=True)
        self.index = Index.open(settings.archive.db_url())
        self.ingest = Ingest(settings.archive, self.index)
        self.scp = ArchiveSCP(settings, self.ingest, self.index)
        self.server: Acceptor | None = None

    def start(self) -> Acceptor:
        """Listen for associations (each served on its own thread) on the configured port.

        Raises:
            NetworkError: the port cannot be listened on.
        """
        acceptor = Acceptor(self.settings, self.scp, self.scp.supported_contexts(),
                            check_called_ae_title=self.settings.archive.check_called_aet)
        address = (self.settings.bind_address, self.settings.port)
        acceptor.start(address)
        self.server = acceptor
        LOG.info("archive %s listening on %s:%d", self.settings.ae_title, *address)
        return acceptor

    def serve_forever(self, stop: threading.Event | None = None) -> None:
        """Serve until ``stop`` is set (or forever)."""
        self.start()
        (stop or threading.Event()).wait()

    def close(self) -> None:
        """Stop listening, finish the associations in progress, close the index."""
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        self.index.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
