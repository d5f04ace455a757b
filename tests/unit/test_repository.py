"""What the repository holds: the data folder of ``make run`` is patient data, never code."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pacskit.settings import ArchiveSettings

ROOT = Path(__file__).parents[2]


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def test_the_default_data_folder_is_ignored_and_holds_nothing_tracked():
    folder = str(ArchiveSettings().data_dir)
    assert _git("ls-files", "--", folder).stdout == ""
    for inside in ("index.db", "index.db-wal", "1.2.3/1.2.3.4/1.2.3.4.5.dcm"):
        assert _git("check-ignore", "-q", f"{folder}/{inside}").returncode == 0, inside


def test_no_test_module_name_is_in_both_suites():
    """The two suites run in one pytest session (``make test``), where two test modules of
    the same basename cannot both be imported."""
    names = [{p.name for p in (ROOT / "tests" / suite).glob("test_*.py")} for suite in ("unit", "integration")]
    assert names[0] & names[1] == set()


def test_a_port_for_a_peer_is_below_the_range_outgoing_connections_take():
    from pacskit.testing.peers import _ephemeral_low, free_port

    ports = {free_port() for _ in range(20)}
    assert all(1024 <= port < _ephemeral_low() for port in ports)
