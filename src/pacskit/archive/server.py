"""Running the archive: the index opened once, the ingest path, the DIMSE server."""

from __future__ import annotations

import errno
import logging
import threading
from types import TracebackType

from pynetdicom.transport import ThreadedAssociationServer

from pacskit.archive.index import Index
from pacskit.archive.ingest import Ingest
from pacskit.archive.scp import ArchiveSCP
from pacskit.errors import NetworkError
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
        self.server: ThreadedAssociationServer | None = None

    def start(self) -> ThreadedAssociationServer:
        """Listen for associations (in background threads) on the configured port.

        Raises:
            NetworkError: the port cannot be listened on.
        """
        ae = self.scp.application_entity()
        address = (self.settings.bind_address, self.settings.port)
        try:
            self.server = ae.start_server(address, block=False, evt_handlers=self.scp.handlers())
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise NetworkError(f"cannot listen on {address[0]}:{address[1]}: {reason}") from None
        LOG.info("archive %s listening on %s:%d", self.settings.ae_title, *address)
        return self.server

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
