"""``pacskit archive import`` and ``export`` in a pseudo-terminal: a progress bar, and
Ctrl-C (SIGINT) printing how far it got and exiting 130 with nothing half-written — the
archive then checks consistent and holds exactly the instances imported; the export folder
holds only whole files."""

from __future__ import annotations

import re
import signal

import pytest
from clirunner import run_cli
from pydicom import dcmread
from test_move_progress import Terminal

from pacskit.testing.corpus import generate_corpus

COUNT = 240
EXPORTED = 2000
"""An export writes a few thousand small files a second: enough of them that the process is
caught (SIGSTOP) before it has written them all."""


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    generate_corpus(root, patients=1, studies_per_patient=1, series_per_study=4,
                    instances_per_series=COUNT // 4, seed=11)
    return root


@pytest.fixture(scope="module")
def archived(tmp_path_factory):
    """An archive holding :data:`EXPORTED` instances."""
    root = tmp_path_factory.mktemp("archived")
    generate_corpus(root / "files", patients=1, studies_per_patient=1, series_per_study=4,
                    instances_per_series=EXPORTED // 4, seed=12)
    imported = run_cli("archive", "import", root / "files", "--data-dir", root / "data")
    assert imported.returncode == 0, imported.stderr
    return root / "data"


def interrupt_when_moving(terminal: Terminal, label: str, count: int = COUNT) -> int:
    """Ctrl-C once the bar has moved: the process is stopped (SIGSTOP) as soon as it shows
    progress, so the interrupt cannot come after its end, then interrupted and let go on."""
    terminal.read_until(rf"{label}\s.*?[1-9]\d*/{count}\b", timeout=120)
    terminal.process.send_signal(signal.SIGSTOP)
    assert terminal.process.poll() is None, "the command ended before it could be interrupted"
    terminal.process.send_signal(signal.SIGINT)
    terminal.process.send_signal(signal.SIGCONT)
    assert terminal.finish(timeout=60) == 130, terminal.screen[-2000:]
    done = re.search(rf"Interrupted: (\d+) of {count} (files|instances) (done|copied); none half-written",
                     terminal.screen)
    assert done, terminal.screen[-2000:]
    assert "Traceback" not in terminal.screen
    return int(done.group(1))


def test_import_interrupted_keeps_the_archive_consistent(many, tmp_path):
    data = tmp_path / "data"
    done = interrupt_when_moving(Terminal("archive", "import", many, "--data-dir", data), "importing")
    assert 1 <= done < COUNT
    check = run_cli("archive", "check", "--data-dir", data)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("0 rows without a file, 0 files without a row")
    stored = [p for p in (data / "files").rglob("*") if p.is_file()]
    assert len(stored) == done


def test_export_interrupted_leaves_only_whole_files(archived, tmp_path):
    out = tmp_path / "out"
    done = interrupt_when_moving(Terminal("archive", "export", "-o", out, "--data-dir", archived), "exporting",
                                 EXPORTED)
    assert 1 <= done < EXPORTED
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == done
    assert not [p.name for p in files if p.name.startswith(".")]
    for path in files:
        assert dcmread(path).SOPInstanceUID in path.name
