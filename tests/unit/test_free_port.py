"""Ports for peers: each xdist worker has its own slice, and a worker never hands out a
port twice in a row while it is still free (CI once saw two workers race for one)."""

from __future__ import annotations

import socket
import subprocess
import sys

from pacskit.testing import peers


def _ports_of(worker: str, count: str, n: int) -> set[int]:
    code = f"from pacskit.testing.peers import free_port\nprint(*[free_port() for _ in range({n})])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTEST_XDIST_WORKER": worker, "PYTEST_XDIST_WORKER_COUNT": count,
             "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
        capture_output=True, text=True, check=True,
    ).stdout
    return {int(p) for p in out.split()}


def test_workers_draw_from_disjoint_slices() -> None:
    first = _ports_of("gw0", "3", 40)
    second = _ports_of("gw1", "3", 40)
    third = _ports_of("gw2", "3", 40)
    assert len(first) == len(second) == len(third) == 40
    assert not first & second and not second & third and not first & third


def test_a_worker_does_not_repeat_a_port_it_handed_out() -> None:
    handed = [peers.free_port() for _ in range(30)]
    assert len(set(handed)) == 30


def test_a_port_taken_meanwhile_is_passed_over() -> None:
    with socket.socket() as held:
        nxt = peers.free_port()
        held.bind((peers.LOOPBACK, nxt + 1))
        assert peers.free_port() != nxt + 1
