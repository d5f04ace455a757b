"""`pacskit serve` as the DICOMweb server of hostile clients (issue 18), in a process of its
own: each test sends exactly the hostile input on loopback, checks the bound (time,
descriptors, peak resident memory), then that QIDO-RS and STOW-RS still work."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
from serve_process import ServeProcess
from slow_http import HeaderDrippers

from pacskit import Client, Settings

HEADER_TIMEOUT = 4.0
DRIPPERS = 300


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def assert_web_serving(server: ServeProcess, instance: Path) -> None:
    """A QIDO-RS search answers, and a STOW-RS of ``instance`` is stored and then found."""
    assert httpx.get(f"{server.web_url}/studies", timeout=10).status_code in (200, 204)
    stored = Client(Settings(ae_title="PACSKIT")).store([instance], server.web_url).raise_for_status()
    assert stored.sent == 1
    found = httpx.get(f"{server.web_url}/instances", timeout=10).json()
    assert any(item["00080018"]["Value"] for item in found)


def test_headers_that_never_end_are_cut_at_the_header_timeout(tmp_path, corpus):
    with ServeProcess(tmp_path / "data", http=True, max_files=256,
                      settings={"WEB__HEADER_TIMEOUT": str(HEADER_TIMEOUT)}) as server:
        idle = descriptors(server.pid)
        with HeaderDrippers(server.http_port, DRIPPERS, interval=2.0) as drippers:
            time.sleep(1.0)
            started = time.monotonic()
            answer = httpx.get(f"{server.web_url}/studies", timeout=3 * HEADER_TIMEOUT)
            assert answer.status_code in (200, 204)
            assert time.monotonic() - started < 3 * HEADER_TIMEOUT
            deadline = time.monotonic() + 6 * HEADER_TIMEOUT
            while drippers.open() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not drippers.open(), f"{len(drippers.open())} of {DRIPPERS} dripping connections still open"
            held = [d.closed_at - d.connected_at for d in drippers.drips
                    if d.connected_at is not None and d.closed_at is not None]
            assert len(held) == DRIPPERS
            assert max(held) < 2 * HEADER_TIMEOUT + 3.0, max(held)
            timed_out = [d for d in drippers.drips if d.received.startswith(b"HTTP/1.1 408 ")]
            assert len(timed_out) == DRIPPERS, [d.received[:40] for d in drippers.drips][:5]
        assert descriptors(server.pid) <= idle + 4
        assert_web_serving(server, corpus[0].path)
