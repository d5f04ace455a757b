"""A loopback TCP proxy that records every byte a client sends to a peer, and can cut
the connection part-way, as a peer that goes away mid-transfer."""

from __future__ import annotations

import socket
import threading


class RecordingProxy:
    """Forwards connections on ``port`` to ``target``; ``sent`` holds client → peer bytes.

    With ``cut_after``, both sides are disconnected once the client has sent that many
    bytes (over all connections).
    """

    def __init__(self, target_host: str, target_port: int, cut_after: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.cut_after = cut_after
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for src, dst, record in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(target=self._pump, args=(src, dst, record), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if record:
                    with self._lock:
                        self.sent += chunk
                        cut = self.cut_after is not None and len(self.sent) >= self.cut_after
                    if cut:
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

    def close(self) -> None:
        self._closing = True
        self.server.close()
        for thread in self._threads:
            thread.join(timeout=5)
