"""The audit trail of a real ``pacskit serve`` (``[audit] file``): one JSON line per
association, per operation, per DICOMweb request, and a security event for a refused TLS
handshake or user identity — after DCMTK and pacskit used it as a user would; never a
patient name."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from clirunner import run_cli
from pydicom import dcmread
from serve_process import ARCHIVE_AET, CLIENT_AET, ServeProcess

from pacskit.testing.certificates import make_certificates
from pacskit.testing.peers import echoscu, free_port, peer_env, require

PASSWORD = "audit-pass-9"


@pytest.fixture(scope="module")
def day(tmp_path_factory, corpus):
    """A serve with DIMSE, DICOM TLS and DICOMweb and an audit file, after a day's work:
    storescu sends a series, pacskit finds and gets it as alice over TLS, a wrong
    password, a plain client on the TLS port, a QIDO-RS search with a patient name."""
    root = tmp_path_factory.mktemp("audit")
    pki = make_certificates(root / "pki")
    audit = root / "audit.jsonl"
    tls_port = free_port()
    config = root / "serve.toml"
    config.write_text(f"""
[web.users.alice]
password = "{PASSWORD}"

[tls]
certificate = "{pki.server.certificate}"
key = "{pki.server.key}"
ca = "{pki.ca}"
port = {tls_port}

[audit]
file = "{audit}"
""")
    series = [item for item in corpus if item.series_uid == corpus[0].series_uid]
    with ServeProcess(root / "data", settings={"CONFIG": str(config)}, http=True) as server:
        stored = subprocess.run([require("storescu"), "-aet", "STORESCU", "-aec", ARCHIVE_AET, "127.0.0.1",
                                 str(server.port), *(str(item.path) for item in series)],
                                capture_output=True, text=True, env=peer_env(), timeout=60, check=False)
        assert stored.returncode == 0, stored.stderr
        tls = ["--tls-cert", pki.client.certificate, "--tls-key", pki.client.key, "--tls-ca", pki.ca,
               "--user", "alice", "--password", PASSWORD]
        secure = f"dicoms://{ARCHIVE_AET}@127.0.0.1:{tls_port}"
        found = run_cli("find", secure, "--study-uid", corpus[0].study_uid, *tls)
        assert found.returncode == 0, found.stderr
        got = run_cli("get", secure, "--level", "series", "--study-uid", corpus[0].study_uid,
                      "--series-uid", corpus[0].series_uid,
                      "-o", root / "got", *tls)
        assert got.returncode == 0, got.stderr
        refused = run_cli("echo", f"dicom://{ARCHIVE_AET}@127.0.0.1:{server.port}", "--user", "alice",
                          "--password", "wrong")
        assert refused.returncode == 14
        assert not echoscu(ARCHIVE_AET, "127.0.0.1", tls_port)
        response = httpx.get(f"{server.web_url}/studies", params={"PatientName": "Doe*", "limit": "5"},
                             auth=("alice", PASSWORD), timeout=30)
        assert response.status_code in (200, 204)
        assert httpx.get(f"{server.web_url}/studies", timeout=30).status_code == 401
    lines = audit.read_text().splitlines()
    return [json.loads(line) for line in lines], audit.read_text(), series


def records(day, event: str, **fields) -> list[dict]:
    return [r for r in day[0] if r["event"] == event and all(r.get(k) == v for k, v in fields.items())]


def test_every_line_is_one_json_record_with_a_utc_time(day):
    entries, text, _ = day
    assert len(entries) == len(text.splitlines()) > 10
    assert all(entry["time"].endswith("Z") and entry["time"][10] == "T" for entry in entries)


def test_an_association_record_names_peer_address_called_ae_tls_outcome_and_duration(day):
    plain = records(day, "association", peer_ae="STORESCU", outcome="accepted")
    assert plain and plain[0]["address"] == "127.0.0.1" and plain[0]["called_ae"] == ARCHIVE_AET
    assert plain[0]["tls"] is False and plain[0]["ended"] == "released" and plain[0]["seconds"] >= 0
    assert "user" not in plain[0]
    secure = records(day, "association", peer_ae=CLIENT_AET, outcome="accepted", tls=True)
    assert secure and all(r["user"] == "alice" for r in secure)
    assert "PACSKIT client" in secure[0]["certificate_subject"]


def test_each_store_is_an_operation_with_its_study_series_and_status(day):
    _, _, series = day
    stores = records(day, "operation", operation="C-STORE", peer_ae="STORESCU")
    assert len(stores) == len(series)
    assert {r["study_uid"] for r in stores} == {series[0].study_uid}
    assert {r["series_uid"] for r in stores} == {series[0].series_uid}
    assert all(r["status"] == "0x0000" and r["outcome"] == "success" and r["instances"] == 1 for r in stores)
    assert {r["instance"] for r in stores} == {item.sop_instance_uid for item in series}
    assert all(r["sop_class"] and r["address"] == "127.0.0.1" for r in stores)


def test_find_and_get_are_operations_of_the_user_with_counts(day):
    _, _, series = day
    finds = records(day, "operation", operation="C-FIND", user="alice")
    assert finds and finds[-1]["study_uid"] == series[0].study_uid and finds[-1]["matches"] >= 1
    gets = records(day, "operation", operation="C-GET", user="alice")
    assert len(gets) == 1 and gets[0]["instances"] == len(series) and gets[0]["failed"] == 0
    assert gets[0]["series_uid"] == series[0].series_uid and gets[0]["status"] == "0x0000"


def test_a_refused_identity_is_a_rejected_association_and_a_security_event(day):
    rejected = records(day, "association", outcome="rejected", peer_ae=CLIENT_AET)
    assert rejected and "user identity refused" in rejected[0]["reason"]
    security = records(day, "security", failure="user identity", user="alice")
    assert security and "passcode" in security[0]["reason"] and security[0]["address"] == "127.0.0.1"


def test_a_refused_tls_handshake_is_a_security_event(day):
    events = records(day, "security", failure="tls")
    assert events and events[0]["address"] == "127.0.0.1" and events[0]["reason"]


def test_dicomweb_requests_are_recorded_without_their_query(day):
    searches = records(day, "http", method="GET", path="/dicom-web/studies")
    assert [r["status"] for r in searches if r.get("user") == "alice"] in ([200], [204])
    assert [r["status"] for r in searches if "user" not in r] == [401]
    refused = records(day, "security", failure="http credentials")
    assert [(r["method"], r["path"]) for r in refused] == [("GET", "/dicom-web/studies")]


def test_no_password_no_patient_name_and_no_query_value_in_the_trail(day):
    _, text, series = day
    assert PASSWORD not in text and "wrong" not in text.replace("wrong user name", "")
    assert "Doe" not in text
    for item in series:
        name = str(dcmread(item.path, stop_before_pixels=True).PatientName)
        assert name and name not in text and name.split("^")[0] not in text


def test_audit_to_standard_error(tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text('[audit]\nfile = "-"\n')
    with ServeProcess(tmp_path / "data", settings={"CONFIG": str(config)}) as server:
        assert run_cli("echo", f"dicom://{ARCHIVE_AET}@127.0.0.1:{server.port}").returncode == 0
        log = Path(server.log_path).read_text()
    echoes = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r["event"] == "operation" and r["operation"] == "C-ECHO" and r["peer_ae"] == CLIENT_AET
               for r in echoes)
