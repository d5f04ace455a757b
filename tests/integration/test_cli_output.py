"""What ``pacskit`` prints, read as a person at a terminal (a real pseudo-terminal at 80 and
120 columns) and as a script in a pipe would, against Orthanc holding the corpus and one
study whose description is Rich markup."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from clirunner import run_cli
from pydicom import dcmread
from pydicom.uid import generate_uid

from pacskit.testing.peers import echoscu, free_port

MARKUP_DESCRIPTION = "[b]Head[/b]"


def run_in_terminal(*args: object, columns: int, cwd: Path | None = None,
                    timeout: float = 60) -> tuple[int, str, str]:
    """``pacskit ARGS`` with standard output on a pseudo-terminal ``columns`` wide:
    exit code, what the terminal showed, standard error."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    env.update(COLUMNS=str(columns), LINES="50", TERM="xterm")
    env.pop("NO_COLOR", None)
    with subprocess.Popen([sys.executable, "-m", "pacskit", *map(str, args)], stdin=slave,
                          stdout=slave, stderr=subprocess.PIPE, cwd=cwd, env=env) as process:
        os.close(slave)
        shown = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        os.close(master)
        stderr = process.stderr.read().decode()
        process.wait(timeout=timeout)
    text = shown.decode().replace("\r\n", "\n")
    return process.returncode, _without_escapes(text), stderr


def _without_escapes(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


@pytest.fixture(scope="module")
def pacs(orthanc, corpus, tmp_path_factory):
    """Orthanc with the corpus and one more study described by Rich markup."""
    source = dcmread(corpus[0].path)
    source.StudyInstanceUID = generate_uid()
    source.SeriesInstanceUID = generate_uid()
    source.SOPInstanceUID = source.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    source.StudyDescription = MARKUP_DESCRIPTION
    source.StudyDate = "19990101"
    path = tmp_path_factory.mktemp("markup") / "markup.dcm"
    source.save_as(path, enforce_file_format=True)
    orthanc.load([path])
    return orthanc


def study_uids(corpus) -> set[str]:
    return {c.study_uid for c in corpus}


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("level", ["study", "series", "image"])
def test_terminal_table_fits_and_keeps_uids_whole(pacs, corpus, columns, level):
    args = ["-l", level]
    if level == "image":
        args += ["--study-uid", corpus[0].study_uid, "--series-uid", corpus[0].series_uid]
    code, shown, stderr = run_in_terminal("find", pacs.address, *args, columns=columns)
    assert code == 0, stderr
    lines = [line for line in shown.splitlines() if line.strip()]
    assert lines and max(len(line) for line in lines) <= columns, shown
    uids = {c.study_uid for c in corpus} | {c.series_uid for c in corpus} | {c.sop_instance_uid for c in corpus}
    words = {w for line in lines for w in line.split()}
    # a UID that appears at all appears whole: no fragment of one is printed alone
    fragments = {w for w in words if w[:1].isdigit() and "." in w and w not in uids
                 and any(u.startswith(w) or w in u for u in uids)}
    assert not fragments, shown
    if columns == 120 and level != "image":
        uid_column = {"study": study_uids(corpus), "series": {c.series_uid for c in corpus}}[level]
        assert uid_column <= words, shown
    if any(w in shown for w in ("hidden",)):
        assert "--format csv" in shown


def test_terminal_study_table_sorted_by_date_and_shows_markup_literally(pacs, corpus):
    code, shown, stderr = run_in_terminal("find", pacs.address, columns=120)
    assert code == 0, stderr
    assert MARKUP_DESCRIPTION in shown
    dates = [line.split()[0] for line in shown.splitlines() if line[:4].isdigit() and "-" in line[:10]]
    assert dates == sorted(dates) and len(dates) == len(study_uids(corpus)) + 1, shown


def test_pipe_gives_tab_separated_lines_sorted(pacs, corpus):
    result = run_cli("find", pacs.address, "-l", "series")
    assert result.returncode == 0, result.stderr
    assert "│" not in result.stdout and "─" not in result.stdout
    rows = list(csv.DictReader(io.StringIO(result.stdout), delimiter="\t"))
    assert {r["SeriesInstanceUID"] for r in rows} >= {c.series_uid for c in corpus}
    keys = [(r["SeriesDate"], r["SeriesNumber"]) for r in rows]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    assert all(len(line.split("\t")) == len(rows[0]) for line in result.stdout.splitlines())


def test_csv_lines_end_in_lf(pacs, corpus):
    result = run_cli("find", pacs.address, "-f", "csv")
    assert result.returncode == 0, result.stderr
    raw = subprocess.run([sys.executable, "-m", "pacskit", "find", pacs.address, "-f", "csv"],
                         capture_output=True, env={k: v for k, v in os.environ.items()
                                                   if not k.startswith("PACSKIT_")}).stdout
    assert b"\r" not in raw
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["StudyInstanceUID"] for r in rows} >= study_uids(corpus)
    assert MARKUP_DESCRIPTION in {r["StudyDescription"] for r in rows}


def test_json_is_keyed_by_keyword_with_lists_and_numbers(pacs, corpus):
    result = run_cli("find", pacs.address, "-f", "json")
    assert result.returncode == 0, result.stderr
    studies = json.loads(result.stdout)
    assert {s["StudyInstanceUID"] for s in studies} >= study_uids(corpus)
    one = next(s for s in studies if s["StudyInstanceUID"] == corpus[0].study_uid)
    assert isinstance(one["ModalitiesInStudy"], list) and corpus[0].modality in one["ModalitiesInStudy"]
    assert one["NumberOfStudyRelatedInstances"] == 6
    assert not any("PatientName" in s for s in studies)


def test_dicom_json_is_the_ps3_18_model(pacs, corpus):
    result = run_cli("find", pacs.address, "-f", "dicom-json")
    assert result.returncode == 0, result.stderr
    studies = json.loads(result.stdout)
    assert {s["0020000D"]["Value"][0] for s in studies} >= study_uids(corpus)
    assert all(s["0020000D"]["vr"] == "UI" for s in studies)
    assert not any("00100010" in s for s in studies)


@pytest.mark.parametrize("command", [["store", "{folder}", "--to", "{address}"],
                                     ["get", "{address}", "-o", "{folder}"],
                                     ["move", "{address}", "--to", "NOWHERE"]])
def test_summary_commands_refuse_csv(pacs, tmp_path, command):
    args = [a.format(folder=tmp_path, address=pacs.address) for a in command]
    result = run_cli(*args, "-f", "csv")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "csv" in result.stderr and not list(tmp_path.iterdir())
    assert "table, json" in run_cli(args[0], "-h").stdout.replace("\n", " ") or \
        "'table', 'json'" in result.stderr


def test_nodes_in_every_format(tmp_path):
    (tmp_path / "pacskit.toml").write_text(
        '[nodes."[b]pacs[/b]"]\nae_title = "PACS"\nhost = "127.0.0.1"\nport = 4242\n')
    code, shown, stderr = run_in_terminal("nodes", columns=80, cwd=tmp_path)
    assert code == 0, stderr
    assert "[b]pacs[/b]" in shown
    piped = run_cli("nodes", cwd=tmp_path)
    assert piped.stdout.splitlines() == ["name\tae_title\thost\tport\tdicomweb_url",
                                         "[b]pacs[/b]\tPACS\t127.0.0.1\t4242\t"]
    rows = list(csv.DictReader(io.StringIO(run_cli("nodes", "-f", "csv", cwd=tmp_path).stdout)))
    assert rows == [{"name": "[b]pacs[/b]", "ae_title": "PACS", "host": "127.0.0.1",
                     "port": "4242", "dicomweb_url": ""}]
    assert json.loads(run_cli("nodes", "-f", "json", cwd=tmp_path).stdout)[0]["port"] == 4242


def test_no_nodes_says_how_to_add_them(tmp_path):
    code, shown, stderr = run_in_terminal("nodes", columns=80, cwd=tmp_path)
    assert code == 0
    assert "add [nodes.NAME] tables to pacskit.toml" in shown + stderr


def test_make_run_banner_prints_the_ports_in_use(tmp_path):
    dimse, http = free_port(), free_port()
    (tmp_path / "pacskit.toml").write_text(f"[web]\nport = {http}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    env["PACSKIT_PORT"] = str(dimse)
    script = Path(__file__).parents[2] / "scripts" / "run.py"
    with subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        try:
            banner = _lines_until(process, "listening on", deadline=time.monotonic() + 60)
            assert echoscu("PACSKIT", "127.0.0.1", dimse)
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert f"pacskit echo dicom://PACSKIT@127.0.0.1:{dimse}" in banner
    assert f"pacskit find http://127.0.0.1:{http}/dicom-web" in banner
    assert ":11112" not in banner and ":8080" not in banner


def _lines_until(process: subprocess.Popen[str], text: str, deadline: float) -> str:
    seen = ""
    while text not in seen:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {text!r} before the deadline: {seen}"
        line = process.stdout.readline()
        assert line, f"exited ({process.poll()}) before {text!r}: {seen}"
        seen += line
    return seen
