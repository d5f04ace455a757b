"""A loopback TCP proxy in front of a real peer that counts the connections the peer has
open through it at once: one thread and one selector. A connection accepted is counted
only once every connection's end already arrived (its EOF, or an error, either side)
has been taken, so that a connection closed before the next one was opened is never
counted beside it."""

from __future__ import annotations

import select
import selectors
import socket
import threading


class CountingProxy:
    """Forwards connections on :attr:`port` to ``target``.

    Attributes:
        accepted: connections accepted so far.
        peak: the most open at once.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.accepted = 0
        self.peak = 0
        self._open: dict[socket.socket, socket.socket] = {}
        self._changed = threading.Condition()
        self._selector = selectors.DefaultSelector()
        self._server = socket.create_server(("127.0.0.1", 0), backlog=512)
        self._server.setblocking(False)
        self.port = self._server.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._server, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def open(self) -> int:
        """Connections open now."""
        with self._changed:
            return len(self._open) // 2

    def wait_open(self, count: int, timeout: float) -> bool:
        """Wait until exactly ``count`` connections are open; whether they were in time."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._open) // 2 == count, timeout)

    def _run(self) -> None:
        while not self._closing:
            self._take(self._selector.select())

    def _take(self, events: list[tuple[selectors.SelectorKey, int]]) -> None:
        ready = [key.fileobj for key, _ in events]
        for sock in ready:
            if sock in self._open:
                self._forward(sock)  # type: ignore[arg-type]
        if self._server in ready and not self._closing:
            self._accept_all()

    def _accept_all(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._take([(key, mask) for key, mask in self._selector.select(0) if key.fileobj in self._open])
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setblocking(True)
                sock.settimeout(30)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._changed:
                self.accepted += 1
                self._open[client], self._open[upstream] = upstream, client
                self.peak = max(self.peak, len(self._open) // 2)
                self._changed.notify_all()
            self._selector.register(client, selectors.EVENT_READ)
            self._selector.register(upstream, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        """Pass on everything ``sock`` holds, and end its connection at its EOF."""
        other = self._open.get(sock)
        if other is None:
            return
        try:
            while chunk := sock.recv(1 << 16):
                other.sendall(chunk)
                if not select.select([sock], [], [], 0)[0]:
                    return
        except OSError:
            pass
        self._end(sock, other)

    def _end(self, sock: socket.socket, other: socket.socket) -> None:
        with self._changed:
            self._open.pop(sock, None)
            self._open.pop(other, None)
            self._changed.notify_all()
        for each in (sock, other):
            self._selector.unregister(each)
            try:
                each.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            each.close()

    def close(self) -> None:
        self._closing = True
        self._wake_w.send(b"x")
        self._thread.join(timeout=10)
        for sock in list(self._open):
            sock.close()
        for sock in (self._server, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
