"""An HTTP server on loopback answering every GET with one canned response: a hostile
DICOMweb server, for the client's bounds."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

S = TypeVar("S", bound="LoopbackServer")


class LoopbackServer:
    """An HTTP server on loopback, ``handler`` answering in a thread per connection; a
    context manager; ``url`` is its DICOMweb root."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web"

    def __enter__(self: S) -> S:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class CannedServer(LoopbackServer):
    """Answers each GET with ``body`` (``content_type``, HTTP 200), chunk by chunk; a
    context manager; ``url`` is its DICOMweb root."""

    def __init__(self, body: bytes, content_type: str = "application/dicom+json") -> None:
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canned.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                view = memoryview(body)
                try:
                    for start in range(0, len(body), 1 << 20):
                        self.wfile.write(view[start:start + (1 << 20)])
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.requests: list[str] = []
        super().__init__(Handler)
