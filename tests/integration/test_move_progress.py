"""``pacskit move`` in a terminal (a pseudo-terminal): a progress bar from the C-MOVE
pending responses (PS3.4 C.4.2.1.6), and Ctrl-C (SIGINT) printing what was done and exiting
130. The move goes from `pacskit serve` to a DCMTK storescp slowed to one instance a second."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from served import ARCHIVE_AET, CLIENT_NODES, served_archive

from pacskit.settings import NodeConfig
from pacskit.testing.peers import StoreSCP

SLOW_AET = "SLOWSCP"


@pytest.fixture
def slow_move(tmp_path, corpus):
    """The archive holding the corpus, and a slow destination it knows."""
    with StoreSCP(tmp_path / "slow", ae_title=SLOW_AET, sleep_during=1) as slow:
        nodes = {**CLIENT_NODES, "slow": NodeConfig(ae_title=SLOW_AET, host="127.0.0.1", port=slow.port)}
        with served_archive(tmp_path / "archive", [c.path for c in corpus], nodes=nodes) as archive:
            yield f"dicom://{ARCHIVE_AET}@127.0.0.1:{archive.settings.port}", slow


class Terminal:
    """``pacskit ARGS`` with standard output and error on a pseudo-terminal."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")},
               "COLUMNS": "100", "LINES": "30", "TERM": "xterm"}
        self.process = subprocess.Popen([sys.executable, "-m", "pacskit", *args], stdin=subprocess.DEVNULL,
                                        stdout=slave, stderr=slave, env=env)
        os.close(slave)
        self.screen = ""

    def read_until(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.screen)
            if found:
                return found
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536).decode(errors="replace")
                except OSError:
                    break
        raise AssertionError(f"{pattern!r} not seen in {self.screen[-2000:]!r}")

    def finish(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        while select.select([self.master], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.screen += chunk.decode(errors="replace")
        os.close(self.master)
        return code


def test_move_shows_its_progress_and_ctrl_c_prints_what_was_done(slow_move, corpus):
    address, slow = slow_move
    terminal = Terminal("move", address, "--to", SLOW_AET, "-l", "study", "--study-uid", corpus[0].study_uid)
    total = sum(c.study_uid == corpus[0].study_uid for c in corpus)
    shown = terminal.read_until(rf"moving\s.*?(\d+)/{total}\b", timeout=60)
    assert 0 <= int(shown.group(1)) < total
    terminal.read_until(rf"moving\s.*?[1-9]\d*/{total}\b", timeout=30)
    terminal.process.send_signal(signal.SIGINT)
    assert terminal.finish(timeout=30) == 130
    done = re.search(rf"Interrupted: (\d+) of {total} sub-operations to {SLOW_AET} done \(0 failed\)", terminal.screen)
    assert done, terminal.screen[-2000:]
    assert 1 <= int(done.group(1)) < total
    assert "Traceback" not in terminal.screen
