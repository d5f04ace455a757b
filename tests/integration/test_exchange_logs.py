"""Both sides of the DICOM exchange in the logs, as DCMTK's -v and -d show it: the
association, each message, and at -vv the contexts, PDUs and identifiers — and never a
patient name, at any level, on either side."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from clirunner import run_cli

from pacskit import Client, Settings
from pacskit.query import Query
from pacskit.testing.corpus import FAMILY
from pacskit.testing.peers import free_port, peer_env, require, storescu

TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"


def assert_no_names(*texts: str) -> None:
    for text in texts:
        for name in FAMILY:
            assert name not in text, name
        assert "^" not in text, "a person name's component separator is in the log"


def test_minus_v_shows_the_association_and_each_message(orthanc):
    result = run_cli("-v", "echo", orthanc.address)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == (f"I: Requesting association: PACSKIT -> {orthanc.ae_title} at 127.0.0.1:{orthanc.port} "
                        "(1 presentation context)")
    assert re.fullmatch(rf"I: Association accepted by {orthanc.ae_title}@127.0.0.1:{orthanc.port}: "
                        r"1 of 1 presentation context \(max PDU \d+\)", lines[1]), lines[1]
    assert lines[2] == "I: Sending C-ECHO-RQ (ID 1, context 1, Verification SOP Class)"
    assert lines[3] == "I: Received C-ECHO-RSP (ID 1): Success"
    assert re.fullmatch(rf"I: Released association with {orthanc.ae_title}@127.0.0.1:{orthanc.port} after "
                        r"[\d.]+ s", lines[4]), lines[4]
    assert not any(line.startswith("D:") for line in lines)


def test_minus_vv_shows_contexts_pdus_and_identifiers_without_names(orthanc, corpus, tmp_path):
    find = run_cli("-vv", "find", orthanc.address, "-l", "study", "-p", corpus[0].patient_id)
    get = run_cli("-vv", "get", orthanc.address, "--study-uid", corpus[0].study_uid, "-o", tmp_path / "out")
    assert find.returncode == 0 and get.returncode == 0, (find.stderr[-2000:], get.stderr[-2000:])
    log = find.stderr
    assert "D:   context 1: Study Root Query/Retrieve Information Model - FIND [" in log
    assert re.search(r"D: Sent P-DATA-TF PDU to \S+ \(\d+ bytes\)", log)
    assert f"D:   (0010,0020) LO [{corpus[0].patient_id}]  # PatientID" in log
    assert re.search(r"I: Received C-FIND-RSP \(ID 1\): Pending", log)
    assert "(0010,0010)" not in log, "the query asked for patient names"
    study_instances = [c for c in corpus if c.study_uid == corpus[0].study_uid]
    assert get.stderr.count("I: Received C-STORE-RQ") == len(study_instances)
    assert get.stderr.count("I: Sending C-STORE-RSP") == len(study_instances)
    assert "(SCP role)" in get.stderr
    assert_no_names(find.stdout, find.stderr, get.stdout, get.stderr)


def test_serve_logs_each_association_and_operation_with_a_timestamp_and_no_names(tmp_path, corpus_dir, corpus):
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    env.update({"PACSKIT_NODES__ME__AE_TITLE": "PACSKIT", "PACSKIT_NODES__ME__HOST": "127.0.0.1",
                "PACSKIT_NODES__ME__PORT": str(free_port())})
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "pacskit", "-vv", "--aet", "ARCHIVE", "--port", str(port),
                                   "serve", "--data-dir", str(tmp_path / "data"), "--no-http", "--no-fsync"],
                                  stderr=log, env=env)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([require("echoscu"), "-aec", "ARCHIVE", "127.0.0.1", str(port)],
                             capture_output=True, env=peer_env(), check=False).returncode:
            assert time.monotonic() < deadline and server.poll() is None, log_path.read_text()[-2000:]
            time.sleep(0.1)
        storescu("ARCHIVE", "127.0.0.1", port, [corpus_dir], calling="PACSKIT")
        found = run_cli("find", f"dicom://ARCHIVE@127.0.0.1:{port}", "-l", "patient", "-f", "dicom-json",
                        env={"PACSKIT_ALLOW_PATIENT_NAMES": "true"})
        assert found.returncode == 0, found.stderr
        assert any(name in found.stdout for name in FAMILY), "the archive holds names, asked for with the opt-in"
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log_path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert all(re.match(TIMESTAMP + " [IDWE]: ", line) or line.startswith(("pacskit archive", "  "))
               for line in lines), [line for line in lines if not re.match(TIMESTAMP, line)][:5]
    assert re.search(TIMESTAMP + r" I: Association request: PACSKIT -> ARCHIVE from 127\.0\.0\.1:\d+", text)
    assert re.search(TIMESTAMP + r" I: Accepted association from PACSKIT \(127\.0\.0\.1:\d+\)", text)
    assert text.count(" I: C-STORE for PACSKIT (127.0.0.1:") == len(corpus)
    assert re.search(TIMESTAMP + r" I: C-FIND for PACSKIT \(127\.0\.0\.1:\d+\): success", text)
    assert "(0010,0010) PN (withheld)" in text, "the C-FIND identifier asked for names: shown withheld"
    assert_no_names(text)


def test_no_name_in_a_library_users_log_at_debug(orthanc, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    client = Client(Settings())
    for level in ("patient", "study", "series", "image"):
        list(client.find(orthanc.address, Query.build(level)))
    client.get(orthanc.address, Query.build("patient"), Path(tmp_path) / "all").raise_for_status()
    assert "C-STORE-RQ" in caplog.text and "C-FIND-RSP" in caplog.text
    assert_no_names(caplog.text)
