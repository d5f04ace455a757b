"""Floods of TCP connections against ``pacskit serve`` (its own process): the excess over
``max_connections`` (128) and ``max_connections_per_address`` (64) is refused by the
accept loop with an A-ASSOCIATE-RJ and no thread of its own, and an accept loop out of
descriptors waits and goes on (docs/limits.md).

The floods call from 127.0.0.2 and 127.0.0.3, loopback addresses of their own; the
legitimate caller is on 127.0.0.1.
"""

from __future__ import annotations

import errno
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hostile_peers import assert_serving, client
from raw_pdu import A_ASSOCIATE_RJ_PDU
from serve_process import ServeProcess

from pacskit.errors import AssociationRejected

MAX_CONNECTIONS = 128
PER_ADDRESS = 64
FLOOD = 1500
SETTLE = 30.0
BATCH = 50
LOCAL_LIMIT_EXCEEDED = (0x02, 0x03, 0x02)


@pytest.fixture(autouse=True)
def enough_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Flood:
    """Idle connections to 127.0.0.1:``port`` (connected without waiting), and what
    the server answered on each."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.sockets: list[socket.socket] = []
        self.answers: dict[socket.socket, bytes] = {}

    def open(self, source: str, count: int, *, kept: int) -> None:
        """Open ``count`` connections from ``source``, of which the server is to keep
        ``kept`` and answer the rest; in batches, each answered before the next is opened
        (so that the listen backlog never overflows and no SYN waits for a retry)."""
        answered = len(self.answers)
        opened = 0
        while opened < count:
            batch = min(BATCH, count - opened)
            for _ in range(batch):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind((source, 0))
                sock.setblocking(False)
                code = sock.connect_ex(("127.0.0.1", self.port))
                assert code in (0, errno.EINPROGRESS), errno.errorcode.get(code, code)
                self.sockets.append(sock)
                self.selector.register(sock, selectors.EVENT_READ)
            opened += batch
            self.wait_for_answers(answered + max(0, opened - kept), SETTLE)

    def wait_for_answers(self, count: int, timeout: float) -> None:
        """Wait until ``count`` connections have been answered (or closed)."""
        deadline = time.monotonic() + timeout
        while len(self.answers) < count and time.monotonic() < deadline:
            for key, _ in self.selector.select(0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(64)
                except OSError:
                    data = b""
                self.answers[sock] = data
                self.selector.unregister(sock)
        assert len(self.answers) >= count, f"{len(self.answers)} of {count} answered within {timeout:g} s"

    def rejections(self) -> list[bytes]:
        return [data for data in self.answers.values() if data[:1] == bytes([A_ASSOCIATE_RJ_PDU])]

    def close(self) -> None:
        self.selector.close()
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


@contextmanager
def flood(port: int) -> Iterator[Flood]:
    opened = Flood(port)
    try:
        yield opened
    finally:
        opened.close()


def test_a_flood_of_idle_connections_is_refused_without_a_thread_each_and_others_are_served(
        tmp_path: Path, corpus: list):
    with ServeProcess(tmp_path / "data") as server, flood(server.port) as connections:
        threads_before = server.status("Threads")
        connections.open("127.0.0.2", FLOOD, kept=PER_ADDRESS)
        rejections = connections.rejections()
        assert len(rejections) == FLOOD - PER_ADDRESS
        assert all(tuple(data[7:10]) == LOCAL_LIMIT_EXCEEDED for data in rejections)
        assert server.status("Threads") <= threads_before + PER_ADDRESS
        assert client().echo(server.node).status == 0x0000  # another address is served meanwhile

        connections.open("127.0.0.3", FLOOD // 10, kept=MAX_CONNECTIONS - PER_ADDRESS)
        assert len(connections.rejections()) == FLOOD + FLOOD // 10 - MAX_CONNECTIONS
        threads_flooded = server.status("Threads")
        assert threads_flooded <= threads_before + MAX_CONNECTIONS, threads_flooded
        with pytest.raises(AssociationRejected) as refused:
            client().echo(server.node)  # every connection is taken: refused, not left waiting
        assert (refused.value.result, refused.value.source, refused.value.reason) == LOCAL_LIMIT_EXCEEDED

        connections.close()
        assert_serving(server, corpus[0].path)


def test_the_accept_loop_runs_out_of_descriptors_waits_and_serves_again(tmp_path: Path, corpus: list):
    settings = {"MAX_CONNECTIONS": "1000", "MAX_CONNECTIONS_PER_ADDRESS": "1000"}
    with ServeProcess(tmp_path / "data", settings=settings, max_files=256) as server:
        with flood(server.port) as connections:
            connections.open("127.0.0.2", 400, kept=400)
            deadline = time.monotonic() + SETTLE
            while "Too many open files" not in server.log() and time.monotonic() < deadline:
                time.sleep(0.1)
        assert server.is_alive()
        assert_serving(server, corpus[0].path)
        assert "cannot accept connections (Too many open files)" in server.log()  # it did run out
