"""HTTP clients that never finish their request headers (slowloris): many connections,
each sending a request line and then one more header line every few seconds, watched
from one thread until the server closes them."""

from __future__ import annotations

import errno
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Drip:
    """One dripping connection: when it connected, when the server closed it, what the
    server wrote before closing."""

    sock: socket.socket
    connected_at: float | None = None
    closed_at: float | None = None
    received: bytes = b""
    lines: int = 0


@dataclass
class HeaderDrippers:
    """``count`` connections to ``127.0.0.1:port``, each sending ``GET path HTTP/1.1``
    and then a header line every ``interval`` seconds, never the empty line that ends
    the headers; a context manager running them in a thread."""

    port: int
    count: int
    interval: float = 2.0
    path: str = "/dicom-web/studies"
    drips: list[Drip] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="header-drippers", daemon=True)
        self.started_at = 0.0

    def __enter__(self) -> HeaderDrippers:
        self.started_at = time.monotonic()
        for _ in range(self.count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", self.port))
            self.drips.append(Drip(sock))
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        for drip in self.drips:
            drip.sock.close()

    def open(self) -> list[Drip]:
        """The connections the server has not closed."""
        return [d for d in self.drips if d.closed_at is None]

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        for drip in self.drips:
            selector.register(drip.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, drip)
        next_lines = time.monotonic() + self.interval
        while not self.stop.is_set() and self.open():
            for key, events in selector.select(timeout=0.1):
                drip: Drip = key.data
                if events & selectors.EVENT_WRITE and drip.connected_at is None:
                    if drip.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self._closed(selector, drip)
                        continue
                    drip.connected_at = time.monotonic()
                    self._send(selector, drip, f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
                    if drip.closed_at is None:
                        selector.modify(drip.sock, selectors.EVENT_READ, drip)
                if events & selectors.EVENT_READ and drip.closed_at is None:
                    self._read(selector, drip)
            if time.monotonic() >= next_lines:
                next_lines += self.interval
                for drip in self.open():
                    if drip.connected_at is not None:
                        drip.lines += 1
                        self._send(selector, drip, f"X-Drip-{drip.lines}: {'a' * 8}\r\n".encode())
        selector.close()

    def _send(self, selector: selectors.BaseSelector, drip: Drip, data: bytes) -> None:
        try:
            drip.sock.send(data)
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ENOTCONN):
                self._closed(selector, drip)

    def _read(self, selector: selectors.BaseSelector, drip: Drip) -> None:
        try:
            data = drip.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            drip.received += data
        else:
            self._closed(selector, drip)

    @staticmethod
    def _closed(selector: selectors.BaseSelector, drip: Drip) -> None:
        drip.closed_at = time.monotonic()
        selector.unregister(drip.sock)
