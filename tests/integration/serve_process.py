"""`pacskit serve` in a process of its own, as a user runs it: an archive on a free
loopback port (DIMSE only), its log in a file so that nothing it writes can block it."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pacskit import Node
from pacskit.testing.peers import echoscu, free_port, storescu

ARCHIVE_AET = "ARCHIVE"
CLIENT_AET = "PACSKIT"
START_TIMEOUT = 30.0


class ServeProcess:
    """``pacskit serve --data-dir data_dir --no-http`` on a free port, knowing the peer
    ``CLIENT_AET`` (who may then find and retrieve); a context manager that starts it (once
    it answers DCMTK ``echoscu``) and stops it.

    ``settings`` are more ``PACSKIT_*`` environment variables (``{"ACSE_TIMEOUT": "3"}``);
    ``max_files`` lowers the process's RLIMIT_NOFILE; with ``http``, DICOMweb is served
    too, at :attr:`web_url`; ``ready`` replaces the ``echoscu`` that says it is up (for
    a server that rejects it)."""

    def __init__(self, data_dir: Path, *, fsync: bool = False, settings: dict[str, str] | None = None,
                 max_files: int | None = None, http: bool = False,
                 ready: Callable[[ServeProcess], bool] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.http_port = free_port() if http else None
        self.fsync = fsync
        self.settings = {f"PACSKIT_{name}": value for name, value in (settings or {}).items()}
        self.max_files = max_files
        self.ready = ready or (lambda serve: echoscu(ARCHIVE_AET, "127.0.0.1", serve.port))
        self.log_path = data_dir.parent / f"{data_dir.name}-serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> Node:
        return Node(ae_title=ARCHIVE_AET, host="127.0.0.1", port=self.port)

    @property
    def web_url(self) -> str:
        assert self.http_port is not None
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ServeProcess:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        known = {"PACSKIT_NODES__CLIENT__AE_TITLE": CLIENT_AET, "PACSKIT_NODES__CLIENT__HOST": "127.0.0.1",
                 "PACSKIT_NODES__CLIENT__PORT": str(free_port()), **self.settings}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pacskit", "--aet", ARCHIVE_AET, "--port", str(self.port), "serve",
                 "--data-dir", str(self.data_dir),
                 *(["--http-port", str(self.http_port)] if self.http_port else ["--no-http"]),
                 *([] if self.fsync else ["--no-fsync"])],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **known},
                preexec_fn=self._limit_files if self.max_files is not None else None)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"pacskit serve exited with {self.process.returncode}: {self.log()}")
            if self.ready(self) and self._web_answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"pacskit serve did not answer within {START_TIMEOUT:g} s: {self.log()}")

    def _web_answers(self) -> bool:
        if self.http_port is None:
            return True
        try:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=1):
                return True
        except OSError:
            return False

    def _limit_files(self) -> None:
        assert self.max_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.max_files, self.max_files))

    def load(self, paths: list[Path]) -> None:
        """Store files or folders with DCMTK ``storescu``."""
        storescu(ARCHIVE_AET, "127.0.0.1", self.port, paths)

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_kib(self) -> int:
        """The server's resident set size (VmRSS of /proc/PID/status), in KiB."""
        return self.status("VmRSS")

    def status(self, field: str) -> int:
        """A number of /proc/PID/status: ``VmRSS``, ``VmHWM`` (peak RSS; both in KiB),
        ``Threads``."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} for process {self.pid}")

    def temporary_files(self) -> list[Path]:
        """What is left in the data directory's temporary area."""
        tmp = self.data_dir / "tmp"
        return sorted(p for p in tmp.rglob("*") if p.is_file()) if tmp.is_dir() else []

    def stop(self) -> int | None:
        """Terminate (then kill) the server; its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        return process.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

