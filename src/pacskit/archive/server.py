"""Running the archive: the index opened once, the ingest path, the DIMSE server and the
DICOMweb server, the users an association's identity is checked against, the audit trail."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from pacskit.archive.commitment import InstanceCheck, StorageCommitmentService
from pacskit.archive.commitment_delivery import ReportDelivery
from pacskit.archive.commitment_store import Transactions
from pacskit.archive.identities import Identities
from pacskit.archive.index import Index
from pacskit.archive.ingest import Ingest
from pacskit.archive.mpps import MppsRetrieveService, MppsService, PerformedSteps
from pacskit.archive.recovery import Recovered, recover
from pacskit.archive.scp import ArchiveSCP
from pacskit.audit import open_trail
from pacskit.net.acceptor import Acceptor
from pacskit.net.tls import https_context, server_context
from pacskit.settings import Settings

if TYPE_CHECKING:
    from pacskit.web.server import WebServer

LOG = logging.getLogger("pacskit.archive")


class Archive:
    """The archive of ``settings``: open it, :meth:`start` serving, :meth:`close`.

    Raises:
        ConfigError: on construction, when the index cannot be opened.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.archive.data_dir.mkdir(parents=True, exist_ok=True)
        self.audit = open_trail(settings.audit.file)
        self.identities = Identities(settings)
        self.index = Index.open(settings.archive.db_url())
        self.ingest = Ingest(settings.archive, self.index)
        self.scp = ArchiveSCP(settings, self.ingest, self.index)
        self.mpps = PerformedSteps(self.index)
        self.scp.register(MppsService(self.mpps))
        self.scp.register(MppsRetrieveService(self.mpps))
        self.commitment_reports: ReportDelivery | None = None
        if settings.archive.commitment.enabled:
            self._serve_commitment()
        self.server: Acceptor | None = None
        self.web: WebServer | None = None
        self.ohif: WebServer | None = None

    def _serve_commitment(self) -> None:
        transactions = Transactions(self.index)
        check = InstanceCheck(self.index, self.ingest.files)
        self.commitment_reports = ReportDelivery(self.settings, transactions, self.scp.access.destination,
                                                 check.report)
        self.scp.register(StorageCommitmentService(transactions, check, self.commitment_reports))

    def recover(self) -> Recovered:
        """Settle what a run that did not stop cleanly left in flight (see
        :mod:`pacskit.archive.recovery`)."""
        return recover(self.index, self.ingest)

    def start(self) -> Acceptor:
        """Run the start-up check (:meth:`recover`), then listen for associations (each
        served on its own thread) on the configured port, and for DICOMweb requests on
        the HTTP port unless ``web.enabled`` is off; deliver the Storage Commitment
        reports left undelivered.

        Raises:
            NetworkError: a port cannot be listened on.
        """
        self.recover()
        tls = self.settings.tls
        context = server_context(tls) if tls.port is not None else None
        acceptor = Acceptor(self.settings, self.scp, self.scp.supported_contexts(),
                            check_called_ae_title=self.settings.archive.check_called_aet,
                            authenticate=self.identities.authenticate, audit=self.audit)
        self.server = acceptor
        try:
            if tls.plain or context is None:
                address = (self.settings.bind_address, self.settings.port)
                acceptor.start(address)
                LOG.info("archive %s listening on %s:%d", self.settings.ae_title, *address)
            if context is not None and tls.port is not None:
                acceptor.start((self.settings.bind_address, tls.port), tls=context)
                LOG.info("archive %s listening for DICOM TLS (%s) on %s:%d", self.settings.ae_title,
                         tls.profile, self.settings.bind_address, tls.port)
        except BaseException:
            self.close_servers()
            raise
        if self.commitment_reports is not None:
            self.commitment_reports.start()
        if self.settings.web.enabled:
            try:
                self.web = self._web_server()
                self.web.start()
                if self.settings.web.ohif_dir is not None:
                    self.ohif = self._ohif_server(self.settings.web.ohif_dir)
                    self.ohif.start()
            except BaseException:
                self.close_servers()
                raise
        return acceptor

    def _web_server(self) -> WebServer:
        from pacskit.web.app import create_app
        from pacskit.web.server import WebServer

        web = self.settings.web
        tls = https_context(self.settings.tls) if self.settings.tls.https else None
        return WebServer(create_app(self), web.bind, web.port, header_timeout=web.header_timeout,
                         body_timeout=web.body_timeout, body_min_rate=web.body_min_rate, tls=tls)

    def _ohif_server(self, directory: Path) -> WebServer:
        from pacskit.web.ohif import create_ohif_app
        from pacskit.web.server import WebServer

        web = self.settings.web
        tls = https_context(self.settings.tls) if self.settings.tls.https else None
        port = web.viewer_port
        assert port is not None
        return WebServer(create_ohif_app(self, directory), web.bind, port, header_timeout=web.header_timeout,
                         body_timeout=web.body_timeout, body_min_rate=web.body_min_rate, tls=tls)

    def serve_forever(self, stop: threading.Event | None = None) -> None:
        """Serve until ``stop`` is set (or forever)."""
        self.start()
        (stop or threading.Event()).wait()

    def close_servers(self) -> None:
        """Stop listening (HTTP and DIMSE), finish what is in progress."""
        if self.ohif is not None:
            self.ohif.stop()
            self.ohif = None
        if self.web is not None:
            self.web.stop()
            self.web = None
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        if self.commitment_reports is not None:
            self.commitment_reports.stop()

    def close(self) -> None:
        """Stop listening, finish the associations and requests in progress, close the index."""
        self.close_servers()
        self.ingest.close()
        self.index.close()
        if self.audit is not None:
            self.audit.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
