"""``pacskit copy`` in a pseudo-terminal: a progress bar, and Ctrl-C (SIGINT) printing how
far it got and exiting 130 with nothing half-written; a second run copies only the rest.
Into a folder (a re-layout of another folder) and into DCMTK storescp slowed to one
instance a second."""

from __future__ import annotations

import re
import signal

import pytest
from clirunner import run_cli
from pydicom import dcmread
from test_archive_progress import interrupt_when_moving
from test_move_progress import Terminal

from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import StoreSCP

COUNT = 2000
"""A folder-to-folder copy writes a few thousand small files a second: enough of them that
the process is caught (SIGSTOP) before it has written them all."""


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    generate_corpus(root, patients=1, studies_per_patient=1, series_per_study=4,
                    instances_per_series=COUNT // 4, seed=13)
    return root


def test_a_folder_copy_interrupted_leaves_whole_files_and_a_second_run_copies_the_rest(many, tmp_path):
    out = tmp_path / "out"
    done = interrupt_when_moving(Terminal("copy", str(many), str(out)), "copying", COUNT)
    assert 0 < done < COUNT
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) == done
    assert all(p.suffix == ".dcm" for p in written), "a scratch file was left behind"
    for path in written:
        dcmread(path).PixelData  # noqa: B018 — each file whole, to its last element

    again = run_cli("copy", many, out)
    assert again.returncode == 0, again.stderr
    assert f"Copied {COUNT - done} instances" in again.stdout, again.stdout
    assert f"{done} already there, 0 failed" in again.stdout, again.stdout
    assert sum(p.is_file() for p in out.rglob("*")) == COUNT


def test_a_copy_to_a_slow_node_shows_its_progress_and_ctrl_c_prints_what_was_sent(corpus, corpus_dir, tmp_path):
    study = corpus[0].study_uid
    total = sum(c.study_uid == study for c in corpus)
    with StoreSCP(tmp_path / "slow", ae_title="SLOWSCP", sleep_during=1) as slow:
        terminal = Terminal("copy", str(corpus_dir), f"dicom://SLOWSCP@127.0.0.1:{slow.port}", "--study-uid", study)
        terminal.read_until(rf"copying\s.*?[1-9]\d*/{total}\b", timeout=60)
        terminal.process.send_signal(signal.SIGINT)
        assert terminal.finish(timeout=30) == 130, terminal.screen[-2000:]
        done = re.search(rf"Interrupted: (\d+) of {total} instances copied; none half-written", terminal.screen)
        assert done, terminal.screen[-2000:]
        assert 1 <= int(done.group(1)) < total
        assert "Traceback" not in terminal.screen
        received = slow.received()
        assert len(received) == int(done.group(1))
        assert {dcmread(p).StudyInstanceUID for p in received} == {study}
