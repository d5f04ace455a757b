"""An HTTP server on loopback in front of a real DICOMweb server: it answers its first
requests with a failure status, then passes each request on and sends back the answer,
counting the requests it got."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler

import httpx
from canned_http import LoopbackServer

PASSED_HEADERS = ("content-type", "warning")


class FlakyFront(LoopbackServer):
    """Answers the first ``fail_first`` requests with ``status``, passes the others on to
    ``target`` (a DICOMweb root); a context manager; ``url`` is its own DICOMweb root,
    ``requests`` the paths asked for."""

    def __init__(self, target: str, *, status: int, fail_first: int) -> None:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with front.lock:
                    front.requests.append(self.path)
                    failing = len(front.requests) <= fail_first
                if failing:
                    body = b"try again later" if status >= 500 else b"bad request"
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                answer = httpx.get(target + self.path.removeprefix("/dicom-web"),
                                   headers={"Accept": self.headers.get("Accept", "*/*")}, timeout=60)
                self.send_response(answer.status_code)
                for name in PASSED_HEADERS:
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self.lock = threading.Lock()
        self.requests: list[str] = []
        super().__init__(Handler)
