"""Storage Commitment Push Model (PS3.4 J) against Orthanc, both ways: Orthanc as the
SCU asking ``pacskit serve`` (its REST API ``/modalities/{id}/storage-commitment``; the
report goes to Orthanc on a new association, pacskit requesting it with the SCP role),
and ``pacskit commit`` asking Orthanc, which reports on a new association to our AE
title and port."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from clirunner import run_cli
from served import ARCHIVE_AET, served_archive

from pacskit import Client, Node
from pacskit.commitment import Reference
from pacskit.scan import read_file
from pacskit.settings import NodeConfig, Settings
from pacskit.testing.peers import Orthanc, free_port

REQUESTER = "PACSKIT"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MISSING = "1.2.826.0.1.3680043.8.498.999998"


@pytest.fixture(scope="module")
def client_port():
    return free_port()


@pytest.fixture(scope="module")
def orthanc_peer(tmp_path_factory, corpus_dir, client_port):
    """Orthanc holding the corpus, knowing pacskit's client (AE PACSKIT at ``client_port``)."""
    with Orthanc(tmp_path_factory.mktemp("orthanc-commit"),
                 modalities={"client": (REQUESTER, "127.0.0.1", client_port)}) as peer:
        peer.load([corpus_dir])
        yield peer


def _references(paths):
    return [Reference(read_file(p).sop_class_uid, read_file(p).sop_instance_uid) for p in paths]


def _orthanc_asks(orthanc: Orthanc, modality: str, references: list[Reference], seconds: float = 30) -> dict:
    """Orthanc's storage commitment request to ``modality``, and the report it received."""
    body = {"DicomInstances": [{"SOPClassUID": r.sop_class_uid, "SOPInstanceUID": r.sop_instance_uid}
                               for r in references]}
    with httpx.Client(base_url=orthanc.url, timeout=30) as http:
        started = http.post(f"/modalities/{modality}/storage-commitment", json=body)
        started.raise_for_status()
        path = started.json()["Path"]
        deadline = time.monotonic() + seconds
        while True:
            report = http.get(path).json()
            if report["Status"] != "Pending":
                return report
            assert time.monotonic() < deadline, report
            time.sleep(0.05)


def test_orthanc_asks_pacskit_serve_and_gets_the_report_on_a_new_association(tmp_path, corpus, orthanc_peer):
    files = [item.path for item in corpus[:3]]
    references = _references(files)
    nodes = {"orthanc": NodeConfig(ae_title=orthanc_peer.ae_title, host="127.0.0.1", port=orthanc_peer.port)}
    with served_archive(tmp_path, files, nodes=nodes) as archive:
        orthanc_peer.add_modality("pacskit", ARCHIVE_AET, "127.0.0.1", archive.settings.port)
        changed = archive.ingest.files / archive.index.instance(references[2].sop_instance_uid).path
        changed.write_bytes(changed.read_bytes()[:-2] + b"\xff\xff")
        report = _orthanc_asks(orthanc_peer, "pacskit", [*references, Reference(CT_IMAGE, MISSING)])

    assert report["Status"] == "Failure"
    assert {item["SOPInstanceUID"] for item in report["Success"]} == {r.sop_instance_uid for r in references[:2]}
    assert {(item["SOPInstanceUID"], item["FailureReason"]) for item in report["Failures"]} == {
        (references[2].sop_instance_uid, 0x0110), (MISSING, 0x0112)}


def test_orthanc_gets_success_when_pacskit_serve_holds_every_instance(tmp_path, corpus, orthanc_peer):
    files = [item.path for item in corpus[3:6]]
    nodes = {"orthanc": NodeConfig(ae_title=orthanc_peer.ae_title, host="127.0.0.1", port=orthanc_peer.port)}
    with served_archive(tmp_path, files, nodes=nodes) as archive:
        orthanc_peer.add_modality("pacskit-all", ARCHIVE_AET, "127.0.0.1", archive.settings.port)
        report = _orthanc_asks(orthanc_peer, "pacskit-all", _references(files))
    assert report["Status"] == "Success"
    assert len(report["Success"]) == 3 and report["Failures"] == []


def test_pacskit_commit_asks_orthanc_which_reports_on_a_new_association(corpus, orthanc_peer, client_port):
    settings = Settings(ae_title=REQUESTER, port=client_port, bind_address="127.0.0.1", dimse_timeout=10)
    references = _references([item.path for item in corpus[:4]])
    node = Node(ae_title=orthanc_peer.ae_title, host="127.0.0.1", port=orthanc_peer.port)
    result = Client(settings).commit(node, [*references, Reference(CT_IMAGE, MISSING)], timeout=30)
    assert not result.same_association
    assert result.report.committed == references
    assert [(f.reference.sop_instance_uid, f.reason) for f in result.report.failed] == [(MISSING, 0x0112)]


def test_pacskit_commit_resolves_a_study_on_orthanc_by_c_find(corpus, orthanc_peer, client_port):
    study = corpus[0].study_uid
    expected = {item.sop_instance_uid for item in corpus if item.study_uid == study}
    env = {"PACSKIT_AE_TITLE": REQUESTER, "PACSKIT_PORT": str(client_port), "PACSKIT_BIND_ADDRESS": "127.0.0.1"}
    done = run_cli("commit", f"dicom://{orthanc_peer.ae_title}@127.0.0.1:{orthanc_peer.port}", "--study-uid", study,
                   "--timeout", "30", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert {item["sop_instance_uid"] for item in answer["committed"]} == expected
    assert answer["failed"] == [] and answer["same_association"] is False
