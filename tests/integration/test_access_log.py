"""`pacskit serve` logs every DICOMweb request on standard error, timestamped: client,
user, method, path and query — a patient name's value withheld —, status, size and
duration; a password or a token is never in it."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pacskit.testing.peers import free_port

PASSWORD = "s3cret-Pw"
TOKEN = "tok-0123456789"
TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
DEADLINE = 20.0


class ServerLog:
    """The standard error of a running process, line by line, read in a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.everything: list[str] = []
        assert process.stderr is not None
        self.thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str) -> str:
        """The first line (from those not yet waited past) matching ``pattern``, within
        :data:`DEADLINE` seconds."""
        deadline = time.monotonic() + DEADLINE
        while True:
            for line in self.seen:
                if re.search(pattern, line):
                    self.seen.remove(line)
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.seen))
            try:
                line = self.lines.get(timeout=left)
                self.seen.append(line)
                self.everything.append(line)
            except queue.Empty:
                continue


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, ServerLog]]:
    """``pacskit serve`` with a user and a token, its DICOMweb root and its log."""
    port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    env.update({"PACSKIT_WEB__USERS": f'{{"alice": "{PASSWORD}"}}', "PACSKIT_WEB__TOKENS": f'["{TOKEN}"]'})
    server = subprocess.Popen([sys.executable, "-m", "pacskit", "--aet", "ARCHIVE", "--port", str(port), "serve",
                               "--data-dir", str(tmp_path / "data"), "--no-fsync", "--http-port", str(http_port)],
                              stderr=subprocess.PIPE, text=True, env=env)
    log = ServerLog(server)
    try:
        log.wait_for(TIMESTAMP + r" I: DICOMweb listening on ")
        yield f"http://127.0.0.1:{http_port}/dicom-web", log
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_each_request_is_logged_with_names_withheld(served):
    url, log = served
    found = httpx.get(f"{url}/studies", params={"PatientName": "DOE*", "limit": "5"}, auth=("alice", PASSWORD))
    assert found.status_code == 200
    line = log.wait_for(r"/dicom-web/studies\?")
    assert re.fullmatch(
        TIMESTAMP + r' I: 127\.0\.0\.1:\d+ alice "GET /dicom-web/studies\?PatientName=\(withheld\)&limit=5" '
        rf"200 {len(found.content)} B \d+\.\d ms", line), line

    by_tag = httpx.get(f"{url}/studies", params={"00100010": "ROE^R*", "includefield": "PatientName"},
                       headers={"Authorization": f"Bearer {TOKEN}"})
    assert by_tag.status_code == 200
    line = log.wait_for(r"/dicom-web/studies\?00100010")
    assert ' (token) "GET /dicom-web/studies?00100010=(withheld)&includefield=PatientName" 200 ' in line, line

    refused = httpx.get(f"{url}/series", params={"ReferringPhysicianName": "WHO"})
    assert refused.status_code == 401
    line = log.wait_for(r"/dicom-web/series\?")
    assert re.search(r' - "GET /dicom-web/series\?ReferringPhysicianName=\(withheld\)" 401 \d+ B \d+\.\d ms$',
                     line), line

    missing = httpx.get(f"{url}/studies/1.2.3/metadata", auth=("alice", PASSWORD))
    assert missing.status_code == 404
    assert ' alice "GET /dicom-web/studies/1.2.3/metadata" 404 ' in log.wait_for(r"/metadata")

    everything = "\n".join(log.everything)
    for secret in ("DOE", "ROE", "WHO", PASSWORD, TOKEN):
        assert secret not in everything
