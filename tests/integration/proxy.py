"""A loopback TCP proxy between pacskit and a real peer: it records what pacskit sends,
and can play a bad network — cut the connection part-way, slow the peer down, or let it
fall silent."""

from __future__ import annotations

import socket
import struct
import threading
import time


class RecordingProxy:
    """Forwards connections on ``port`` to ``target``; ``sent`` holds client → peer bytes.

    Args:
        cut_after: disconnect both sides once the client has sent this many bytes.
        cut_after_received: disconnect both sides once the peer has sent this many bytes.
        stall_after_received: stop forwarding (but keep the connection open) once the
            peer has sent this many bytes.
        delay: seconds to hold each chunk the peer sends before passing it on.
        chunk_size: the most bytes read (and passed on) at a time: small, with ``delay``,
            to trickle what a fast peer sends at once.
        drop_first: reset this many first connections as soon as they are accepted
            (a peer restarting); ``connections`` counts every one accepted.
    """

    def __init__(self, target_host: str, target_port: int, *, cut_after: int | None = None,
                 cut_after_received: int | None = None, stall_after_received: int | None = None,
                 delay: float = 0.0, chunk_size: int = 65536, drop_first: int = 0) -> None:
        self.target = (target_host, target_port)
        self.cut_after = cut_after
        self.cut_after_received = cut_after_received
        self.stall_after_received = stall_after_received
        self.delay = delay
        self.drop_first = drop_first
        self.chunk_size = chunk_size
        self.connections = 0
        self._open = 0
        self._idle = threading.Condition()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sent = bytearray()
        self.received = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections <= self.drop_first:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._idle:
                self._open += 1
            for src, dst, outgoing in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(target=self._pump, args=(src, dst, outgoing), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pump(self, src: socket.socket, dst: socket.socket, outgoing: bool) -> None:
        try:
            while chunk := src.recv(self.chunk_size):
                if outgoing:
                    with self._lock:
                        self.sent += chunk
                        total, limit = len(self.sent), self.cut_after
                else:
                    with self._lock:
                        self.received += len(chunk)
                        total, limit = self.received, self.cut_after_received
                    if self.stall_after_received is not None and total >= self.stall_after_received:
                        self._closing.wait()
                        return
                    time.sleep(self.delay)
                if limit is not None and total >= limit:
                    return
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if outgoing:
                with self._idle:
                    self._open -= 1
                    self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every forwarded connection has ended; whether they did in time."""
        with self._idle:
            return self._idle.wait_for(lambda: self._open == 0, timeout)

    def close(self) -> None:
        self._closing.set()
        self.server.close()
        for thread in self._threads:
            thread.join(timeout=5)
