"""`pacskit receive -o DIR` (the `storescp -od` of pacskit), through the real command line:
DCMTK's `storescu` and `echoscu` push to it; what arrives is written under the layout with
patient names withheld; Ctrl-C (SIGINT) ends it with a summary; bad options and a taken
port are one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clirunner import assert_one_line_error, run_cli
from pydicom import dcmread

from pacskit.testing.hidden_names import NAME_MARKER, craft_hidden_names
from pacskit.testing.peers import echoscu, free_port, storescu

RECEIVER_AET = "RECEIVER"
START_TIMEOUT = 30.0


class Receiving:
    """``pacskit receive`` in a process of its own, answering C-ECHO once started."""

    def __init__(self, out: Path, *args: object) -> None:
        self.out = out
        self.port = free_port()
        self.log = out.parent / f"{out.name}-receive.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pacskit", "receive", "-o", str(out), "--aet", RECEIVER_AET,
             "--port", str(self.port), *map(str, args)],
            stdout=subprocess.PIPE, stderr=self.log.open("wb"), text=True, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while not echoscu(RECEIVER_AET, "127.0.0.1", self.port):
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def finish(self, interrupt: bool = True) -> tuple[int, str]:
        if interrupt:
            self.process.send_signal(signal.SIGINT)
        stdout, _ = self.process.communicate(timeout=30)
        return self.process.returncode, stdout


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_pushed_instances_are_written_with_names_withheld_and_ctrl_c_prints_the_summary(tmp_path, corpus):
    receiving = Receiving(tmp_path / "in", "--format", "json")
    storescu(RECEIVER_AET, "127.0.0.1", receiving.port, [c.path for c in corpus])
    code, stdout = receiving.finish()
    assert code == 0, receiving.log.read_text()
    summary = json.loads(stdout)
    assert (summary["received"], summary["written"], summary["refused"]) == (len(corpus), len(corpus), 0)
    written = files_under(tmp_path / "in")
    assert len(written) == len(corpus)
    names = {str(dcmread(c.path).PatientName).encode("latin-1") for c in corpus}
    assert all(any(name in c.path.read_bytes() for name in names) for c in corpus)
    by_uid = {dcmread(p).SOPInstanceUID: p for p in written}
    assert set(by_uid) == {c.sop_instance_uid for c in corpus}
    for path in written:
        data = path.read_bytes()
        assert not any(name in data for name in names), path
        assert "PatientName" not in dcmread(path) or not str(dcmread(path).PatientName)
        assert path.relative_to(tmp_path / "in").parts[0] == str(dcmread(path).PatientID)
    assert "receiving on" in receiving.log.read_text()


def test_names_hidden_where_only_a_decoder_finds_them_are_blanked(tmp_path):
    crafted = craft_hidden_names(tmp_path / "crafted", "HIDDEN01")
    readable = [c.path for c in crafted if c.variant != "unreadable"]
    receiving = Receiving(tmp_path / "in", "--max-instances", len(readable))
    storescu(RECEIVER_AET, "127.0.0.1", receiving.port, readable)
    code, stdout = receiving.finish(interrupt=False)
    assert code == 0
    assert f"Received {len(readable)} instances" in stdout
    for path in files_under(tmp_path / "in"):
        assert NAME_MARKER not in path.read_bytes(), path


def test_a_second_push_of_the_same_instances_is_skipped_and_a_layout_places_them(tmp_path, corpus):
    layout = "{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"
    receiving = Receiving(tmp_path / "in", "--layout", layout, "--format", "json")
    files = [c.path for c in corpus[:3]]
    storescu(RECEIVER_AET, "127.0.0.1", receiving.port, files)
    storescu(RECEIVER_AET, "127.0.0.1", receiving.port, files)
    code, stdout = receiving.finish()
    summary = json.loads(stdout)
    assert (summary["written"], summary["skipped"]) == (3, 3)
    expected = {Path(c.study_uid, c.series_uid, f"{c.sop_instance_uid}.dcm") for c in corpus[:3]}
    assert {p.relative_to(tmp_path / "in") for p in files_under(tmp_path / "in")} == expected


def test_it_stops_by_itself_after_an_idle_time(tmp_path):
    receiving = Receiving(tmp_path / "in", "--idle-timeout", "0.5")
    code, stdout = receiving.finish(interrupt=False)
    assert code == 0 and "Received 0 instances" in stdout


def test_only_our_ae_title_is_accepted_when_asked(tmp_path, corpus):
    receiving = Receiving(tmp_path / "in", "--check-called-ae")
    assert not echoscu("SOMEONE", "127.0.0.1", receiving.port)
    code, _ = receiving.finish()
    assert code == 0
    assert "called AE title 'SOMEONE' is not ours" in receiving.log.read_text()


def test_a_layout_with_the_patient_name_is_refused(tmp_path):
    result = run_cli("receive", "-o", tmp_path / "in", "--port", free_port(), "--layout", "{PatientName}/{SOPInstanceUID}")
    assert_one_line_error(result, 2, "PatientName")


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        result = run_cli("receive", "-o", tmp_path / "in", "--port", taken.getsockname()[1])
    assert result.returncode != 0
    assert_one_line_error(result, result.returncode, "address already in use")


@pytest.mark.parametrize("option", ["--max-instances", "--idle-timeout"])
def test_bad_numbers_are_usage_errors(tmp_path, option):
    result = run_cli("receive", "-o", tmp_path / "in", option, "0")
    assert result.returncode == 2
