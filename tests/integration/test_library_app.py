"""The notes' web service, over HTTP, against a live Orthanc and `pacskit serve`:
a patient's studies as JSON, a study retrieved to storage, 50 requests at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from library_app import library_app
from served import CLIENT_NODES, dimse_node, served_archive

from pacskit import AsyncClient, Node, Settings
from pacskit.testing.peers import free_port
from pacskit.web.server import WebServer


@pytest.fixture(scope="module")
def archive(tmp_path_factory, corpus):
    with served_archive(tmp_path_factory.mktemp("app"), [c.path for c in corpus],
                        nodes=CLIENT_NODES) as served:
        yield served


@pytest.fixture(params=["orthanc", "pacskit-serve"])
def service(request, orthanc, archive, tmp_path):
    """The web service's base URL, and its storage folder."""
    pacs = (Node(ae_title=orthanc.ae_title, host="127.0.0.1", port=orthanc.port)
            if request.param == "orthanc" else dimse_node(archive))
    server = WebServer(library_app(AsyncClient(Settings()), pacs, tmp_path), "127.0.0.1", free_port())
    server.start()
    yield f"http://127.0.0.1:{server.port}", tmp_path
    server.stop()


def studies_by_patient(corpus):
    mine: dict[str, set[str]] = {}
    for c in corpus:
        mine.setdefault(c.patient_id, set()).add(c.study_uid)
    return mine


def test_a_patients_studies_as_json(service, corpus):
    base, _ = service
    answer = httpx.get(f"{base}/dicom/studies/{corpus[0].patient_id}", timeout=60)
    assert answer.status_code == 200
    studies = answer.json()["studies"]
    assert {s["study_instance_uid"] for s in studies} == studies_by_patient(corpus)[corpus[0].patient_id]
    first = next(s for s in studies if s["study_instance_uid"] == corpus[0].study_uid)
    assert first["study_date"] == f"{corpus[0].study_date[:4]}-{corpus[0].study_date[4:6]}-{corpus[0].study_date[6:]}"
    assert first["patient_id"] == corpus[0].patient_id
    assert "patient_name" not in first


def test_a_study_retrieved_to_storage(service, corpus):
    base, storage = service
    answer = httpx.post(f"{base}/dicom/studies/{corpus[0].study_uid}/retrieve", timeout=120)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["completed"], body["failed"], body["remaining"]) == ("success", 6, 0, 0)
    written = sorted(p.name for p in (storage / corpus[0].study_uid).rglob("*.dcm"))
    assert written == sorted(f"{c.sop_instance_uid}.dcm" for c in corpus if c.study_uid == corpus[0].study_uid)
    assert sorted(Path(f).name for f in body["files"]) == written


def test_fifty_requests_at_once(service, corpus):
    base, storage = service
    patients = studies_by_patient(corpus)
    studies = sorted({c.study_uid for c in corpus})

    async def main():
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            finds = [http.get(f"/dicom/studies/{sorted(patients)[n % len(patients)]}") for n in range(46)]
            gets = [http.post(f"/dicom/studies/{uid}/retrieve") for uid in studies]
            return await asyncio.gather(*finds, *gets)

    answers = asyncio.run(main())
    assert [a.status_code for a in answers] == [200] * 50
    for n, answer in enumerate(answers[:46]):
        expected = patients[sorted(patients)[n % len(patients)]]
        assert {s["study_instance_uid"] for s in answer.json()["studies"]} == expected
    assert [a.json()["completed"] for a in answers[46:]] == [6] * len(studies)
    assert len(list(storage.rglob("*.dcm"))) == len(corpus)
