"""What the tests of hostile peers share: the check that a server still serves, and
what the kernel says about the bytes of a loopback connection (``/proc/net/tcp``)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from serve_process import CLIENT_AET, ServeProcess

from pacskit import Client, Settings
from pacskit.errors import NetworkError


def client() -> Client:
    return Client(Settings(ae_title=CLIENT_AET, acse_timeout=10, dimse_timeout=10, network_timeout=10))


def assert_serving(server: ServeProcess, instance: Path) -> None:
    """A C-ECHO and a C-STORE through the library both succeed."""
    assert client().echo(server.node).status == 0x0000
    assert client().store([instance], server.node).raise_for_status().sent == 1


def echo_succeeds(server: ServeProcess) -> bool:
    try:
        return client().echo(server.node).status == 0x0000
    except NetworkError:
        return False


def connect_from(source: str, port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port`` from the loopback address ``source``."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def _hex_address(port: int) -> str:
    return f"0100007F:{port:04X}"


def queued_bytes(server_port: int, client_ports: set[int]) -> int:
    """Bytes of the connections from ``client_ports`` to ``server_port`` (all on
    127.0.0.1) that the server has not read yet: what the clients' kernel has not had
    acknowledged, and what sits in the server's receive queue."""
    wanted = {_hex_address(port) for port in client_ports}
    server = _hex_address(server_port)
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        tx, rx = (int(value, 16) for value in fields[4].split(":"))
        if local in wanted and remote == server:
            total += tx
        elif local == server and remote in wanted:
            total += rx
    return total


def wait_until_read(server_port: int, client_ports: set[int], timeout: float) -> None:
    """Wait until the server has read everything the clients sent."""
    deadline = time.monotonic() + timeout
    while (left := queued_bytes(server_port, client_ports)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, f"the server left {left} bytes unread after {timeout:g} s"
