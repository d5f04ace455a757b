"""The HTTP server of the archive: uvicorn in a background thread, on a socket bound
before it starts (so that a port in use is a :class:`NetworkError`, as for DIMSE)."""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from pacskit.errors import NetworkError
from pacskit.web.request_deadlines import request_deadlines_protocol

LOG = logging.getLogger("pacskit.web")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class WebServer:
    """Serve ``app`` on ``host:port`` until :meth:`stop`.

    Args:
        app: the ASGI application.
        host: the address to listen on.
        port: the port to listen on.
        header_timeout: seconds a client has to send each request's headers,
        body_timeout, body_min_rate: and then its body (:mod:`pacskit.web.request_deadlines`).
        tls: HTTPS with this context (:func:`pacskit.net.tls.https_context`).
    """

    def __init__(self, app: ASGIApp, host: str, port: int, *, header_timeout: float = 10.0,
                 body_timeout: float = 20.0, body_min_rate: float = 500.0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.tls = tls
        self.host = host
        self.port = port
        self.deadlines = request_deadlines_protocol(header_timeout, body_timeout, body_min_rate)
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.sock: socket.socket | None = None

    def start(self) -> None:
        """Listen, and serve in a background thread.

        Raises:
            NetworkError: the address cannot be listened on, or the server did not start.
        """
        self.sock = _listen(self.host, self.port)
        config = uvicorn.Config(self.app, log_config=None, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=5, server_header=False,
                                http=self.deadlines)
        config.load()
        config.ssl = self.tls
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="pacskit-web", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise NetworkError(f"the DICOMweb server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        LOG.info("DICOMweb listening on %s://%s:%d/dicom-web", "https" if self.tls else "http", self.host, self.port)

    def stop(self) -> None:
        """Stop accepting, let requests in progress finish (a few seconds at most)."""
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(STOP_TIMEOUT)
        if self.sock is not None:
            self.sock.close()
        self.server = self.thread = self.sock = None


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise NetworkError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise NetworkError(f"cannot listen on {host}:{port} (HTTP): {reason}") from None
    sock.setblocking(False)
    return sock
