"""The web page's actions on a running `pacskit serve` (docs/web-actions.md): a study or
series downloaded as a ZIP holds every stored file byte for byte (with a DICOMDIR that
pydicom and DCMTK read), delete needs credentials, the permission and the CSRF header
and removes files and rows, send delivers to DCMTK's storescp and reports a refusing
node per instance; all of it in the audit trail, with no patient name."""

from __future__ import annotations

import io
import json
import os
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from postgres import fresh_database
from pydicom import dcmread
from pydicom.fileset import FileSet
from scripted_peer import Conversation, ScriptedPeer

from pacskit.archive import Archive
from pacskit.archive.deletion import Deleted, delete
from pacskit.archive.maintenance import import_files
from pacskit.net.commands import c_store_rsp
from pacskit.query import Level, Query
from pacskit.settings import (
    ArchiveSettings,
    AuditSettings,
    NodeConfig,
    Settings,
    UserConfig,
    WebSettings,
)
from pacskit.testing.peers import StoreSCP, free_port, require
from pacskit.testing.samples import pydicom_samples

ALICE = ("alice", "alice-pw")
BOB = ("bob", "bob-pw")
ACTION = {"X-Pacskit-Action": "1"}
OUT_OF_RESOURCES = 0xA700
SEND_WITHIN = 60.0
MESSAGE_ID, AFFECTED_CLASS, AFFECTED_INSTANCE = 0x0110, 0x0002, 0x1000


def refuse_every_store(conversation: Conversation) -> None:
    """Answer each C-STORE with 0xA700 (out of resources)."""
    for message in conversation.messages():
        uid = {k: message.command[k].rstrip(b"\0 ").decode() for k in (AFFECTED_CLASS, AFFECTED_INSTANCE)}
        conversation.channel.send(message.context_id, c_store_rsp(
            message.us(MESSAGE_ID) or 0, uid[AFFECTED_CLASS], uid[AFFECTED_INSTANCE], OUT_OF_RESOURCES, "full"))


class Holder:
    """A Storage SCP that answers the first C-STORE of each association, then holds the
    second until :attr:`release` is set (10 s at most), then answers the rest."""

    def __init__(self) -> None:
        self.holding, self.release = threading.Event(), threading.Event()
        self.stores = 0

    def __call__(self, conversation: Conversation) -> None:
        for number, message in enumerate(conversation.messages()):
            self.stores += 1
            if number == 1:
                self.holding.set()
                self.release.wait(10)
            uid = {k: message.command[k].rstrip(b"\0 ").decode() for k in (AFFECTED_CLASS, AFFECTED_INSTANCE)}
            conversation.channel.send(message.context_id, c_store_rsp(
                message.us(MESSAGE_ID) or 0, uid[AFFECTED_CLASS], uid[AFFECTED_INSTANCE], 0))


class Served:
    def __init__(self, archive: Archive, corpus: list, storescp: StoreSCP, audit: Path,
                 holder: Holder | None = None) -> None:
        self.holder = holder
        self.archive = archive
        self.corpus = corpus
        self.storescp = storescp
        self.audit = audit
        self.base = f"http://127.0.0.1:{archive.settings.web.port}"
        self.studies = list(dict.fromkeys(item.study_uid for item in corpus))

    def stored(self, study: str, series: str | None = None) -> dict[str, bytes]:
        """SOP Instance UID → the bytes of its stored file."""
        match = {"StudyInstanceUID": study, **({"SeriesInstanceUID": series} if series else {})}
        level = Level.SERIES if series else Level.STUDY
        files = self.archive.ingest.files
        return {item.sop_instance_uid: (files / item.path).read_bytes()
                for item in self.archive.index.instances(Query(level=level, match=match))}

    def series_of(self, study: str) -> list[str]:
        return list(dict.fromkeys(item.series_uid for item in self.corpus if item.study_uid == study))

    def audit_records(self) -> list[dict]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()]


@pytest.fixture(scope="module")
def served(tmp_path_factory, corpus) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("actions")
    holder = Holder()
    with StoreSCP(workdir / "storescp") as storescp, ScriptedPeer("REFUSER", refuse_every_store) as refuser, \
            ScriptedPeer("HOLDER", holder) as holding:
        nodes = {"storescp": NodeConfig(ae_title=storescp.ae_title, host="127.0.0.1", port=storescp.port),
                 "refuser": NodeConfig(ae_title="REFUSER", host="127.0.0.1", port=refuser.port),
                 "holder": NodeConfig(ae_title="HOLDER", host="127.0.0.1", port=holding.port),
                 "web-only": NodeConfig(dicomweb_url="http://127.0.0.1:1/dicom-web")}
        users = {"alice": UserConfig(password=ALICE[1], actions=["delete", "send"]), "bob": BOB[1]}
        audit = workdir / "audit.jsonl"
        settings = Settings(ae_title="ARCHIVE", port=free_port(), bind_address="127.0.0.1", nodes=nodes,
                            archive=ArchiveSettings(data_dir=workdir / "archive", fsync=False),
                            web=WebSettings(port=free_port(), users=users), audit=AuditSettings(file=str(audit)))
        with Archive(settings) as archive:
            archive.start()
            assert not import_files(archive.ingest, [item.path for item in corpus] + pydicom_samples()).failed
            yield Served(archive, corpus, storescp, audit, holder)


def names_in(served: Served) -> set[str]:
    return {str(dcmread(item.path, stop_before_pixels=True).PatientName) for item in served.corpus} - {""}


def test_a_study_as_a_zip_holds_every_stored_file_byte_for_byte(served):
    study = served.studies[0]
    answer = httpx.get(f"{served.base}/dicom-web/studies/{study}", params={"accept": "application/zip"},
                       auth=ALICE, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["content-disposition"] == f'attachment; filename="study-{study}.zip"'
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert archive.testzip() is None
        members = {name: archive.read(name) for name in archive.namelist()}
    stored = served.stored(study)
    assert len(stored) == 6
    expected = {}
    for item in served.corpus:
        if item.study_uid == study:
            expected[f"{study}/{item.series_uid}/{item.sop_instance_uid}.dcm"] = stored[item.sop_instance_uid]
    assert members == expected
    assert not any(name in path for path in members for name in names_in(served))


def test_a_series_asked_for_in_the_accept_header_is_a_zip_of_that_series(served):
    study = served.studies[0]
    series = served.series_of(study)[1]
    answer = httpx.get(f"{served.base}/dicom-web/studies/{study}/series/{series}",
                       headers={"Accept": "application/zip"}, auth=ALICE, timeout=30)
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        got = {name.rsplit("/", 1)[1].removesuffix(".dcm"): archive.read(name) for name in archive.namelist()}
    assert got == served.stored(study, series)
    multipart = httpx.get(f"{served.base}/dicom-web/studies/{study}/series/{series}", auth=ALICE, timeout=30)
    assert multipart.headers["content-type"].startswith("multipart/related")


def test_a_zip_with_a_dicomdir_is_a_file_set_pydicom_and_dcmtk_read(served, tmp_path):
    study = served.studies[1]
    answer = httpx.get(f"{served.base}/dicom-web/studies/{study}",
                       params={"accept": "application/zip", "dicomdir": "true"}, auth=ALICE, timeout=30)
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "media")
    assert "DICOMDIR" in names
    assert all(len(part) <= 8 and part.replace("_", "").isalnum() and part.isupper()
               for name in names for part in name.split("/")), names
    stored = served.stored(study)
    file_set = FileSet(tmp_path / "media" / "DICOMDIR")
    listed = {instance.SOPInstanceUID: Path(instance.path).read_bytes() for instance in file_set}
    file_set._stage["t"].cleanup()  # pydicom's FileSet makes a staging folder it leaves to the GC
    assert listed == stored
    patients = [r for r in dcmread(tmp_path / "media" / "DICOMDIR").DirectoryRecordSequence
                if r.DirectoryRecordType == "PATIENT"]
    assert patients and all(str(r.get("PatientName", "")) == "" for r in patients)
    assert all(r.PatientID for r in patients)
    dump = subprocess.run([require("dcmdump"), "-q", str(tmp_path / "media" / "DICOMDIR")],
                          capture_output=True, text=True, check=True).stdout
    assert dump.count("(0004,1500)") == len(stored)
    assert not any(name in dump for name in names_in(served))
    # DCMTK's dcmmkdir reads the DICOMDIR back and, updating it with the same files, finds
    # each one already referenced: no record added, none lost, no error.
    tops = sorted({name.split("/")[0] for name in names if name != "DICOMDIR"})
    update = subprocess.run([require("dcmmkdir"), "+U", "+D", "DICOMDIR", "+r", *tops], cwd=tmp_path / "media",
                            capture_output=True, text=True)
    assert update.returncode == 0 and not [line for line in update.stderr.splitlines()
                                           if line.startswith(("E:", "F:"))], update.stderr
    updated = subprocess.run([require("dcmdump"), "-q", str(tmp_path / "media" / "DICOMDIR")],
                             capture_output=True, text=True, check=True).stdout
    assert updated.count("(0004,1500)") == len(stored)


def test_bad_zip_requests_are_refused_before_anything_is_sent(served):
    study = served.studies[0]
    unknown = httpx.get(f"{served.base}/dicom-web/studies/1.2.3.999", params={"accept": "application/zip"},
                        auth=ALICE, timeout=10)
    assert unknown.status_code == 404 and "no such study: 1.2.3.999" in unknown.text
    flag = httpx.get(f"{served.base}/dicom-web/studies/{study}",
                     params={"accept": "application/zip", "dicomdir": "maybe"}, auth=ALICE, timeout=10)
    assert flag.status_code == 400 and "dicomdir" in flag.text
    anonymous = httpx.get(f"{served.base}/dicom-web/studies/{study}", params={"accept": "application/zip"},
                          timeout=10)
    assert anonymous.status_code == 401


def test_delete_needs_credentials_the_permission_and_the_csrf_header(served):
    study = served.studies[2]
    url = f"{served.base}/api/studies/{study}"
    assert httpx.delete(url, headers=ACTION, timeout=10).status_code == 401
    bob = httpx.delete(url, headers=ACTION, auth=BOB, timeout=10)
    assert bob.status_code == 403 and bob.json()["error"] == "bob may not delete (web.users.bob.actions)"
    bare = httpx.delete(url, auth=ALICE, timeout=10)
    assert bare.status_code == 403 and "X-Pacskit-Action" in bare.json()["error"]
    foreign = httpx.delete(url, headers={**ACTION, "Origin": "http://evil.example"}, auth=ALICE, timeout=10)
    assert foreign.status_code == 403 and "evil.example" in foreign.json()["error"]
    assert len(served.stored(study)) == 6
    found = httpx.get(f"{served.base}/dicom-web/studies", params={"StudyInstanceUID": study}, auth=BOB,
                      timeout=10).json()
    assert len(found) == 1


def test_delete_removes_the_files_and_rows_and_later_requests_say_so(served):
    study = served.studies[2]
    files = [served.archive.ingest.files / item.path for item in served.archive.index.instances(
        Query(level=Level.STUDY, match={"StudyInstanceUID": study}))]
    answer = httpx.delete(f"{served.base}/api/studies/{study}", auth=ALICE, timeout=30,
                          headers={**ACTION, "Origin": served.base})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"deleted": {"study": study, "series": served.series_of(study), "instances": 6}}
    assert files and not any(path.exists() for path in files)
    assert not (served.archive.ingest.files / study).exists()
    assert served.stored(study) == {}
    assert list(served.archive.ingest.scratch.iterdir()) == []
    qido = httpx.get(f"{served.base}/dicom-web/studies", params={"StudyInstanceUID": study}, auth=BOB, timeout=10)
    assert qido.json() == []
    again = httpx.delete(f"{served.base}/api/studies/{study}", headers=ACTION, auth=ALICE, timeout=10)
    assert again.status_code == 404 and again.json() == {"status": 404, "error": f"study {study} has been deleted"}
    metadata = httpx.get(f"{served.base}/dicom-web/studies/{study}/metadata", auth=BOB, timeout=10,
                         headers={"Accept": "application/dicom+json"})
    assert metadata.status_code == 404 and metadata.json()["error"] == f"study {study} has been deleted"
    item = next(i for i in served.corpus if i.study_uid == study)
    rendered = httpx.get(f"{served.base}/dicom-web/studies/{study}/series/{item.series_uid}/instances/"
                         f"{item.sop_instance_uid}/rendered", auth=BOB, timeout=10)
    assert rendered.status_code == 404 and "has been deleted" in rendered.text
    records = [r for r in served.audit_records() if r["event"] == "action" and r["action"] == "delete"]
    assert {"user": "alice", "study_uid": study, "instances": 6, "outcome": "ok"}.items() <= records[-2].items()
    assert [r["reason"] for r in records if r["outcome"] == "refused"] == ["permission", "csrf", "csrf"]
    assert not any(name in served.audit.read_text() for name in names_in(served))


def test_deleting_a_series_leaves_the_rest_of_the_study_counted_right(served):
    study = served.studies[3]
    gone, kept = served.series_of(study)
    answer = httpx.delete(f"{served.base}/api/studies/{study}/series/{gone}", headers=ACTION, auth=ALICE,
                          timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["deleted"] == {"study": study, "series": [gone], "instances": 3}
    [row] = httpx.get(f"{served.base}/dicom-web/studies", auth=BOB, timeout=10, params={
        "StudyInstanceUID": study, "includefield": "NumberOfStudyRelatedSeries,NumberOfStudyRelatedInstances,"
                                                   "ModalitiesInStudy"}).json()
    assert row["00201206"]["Value"] == [1] and row["00201208"]["Value"] == [3]
    kept_modality = next(i.modality for i in served.corpus if i.series_uid == kept)
    assert row["00080061"]["Value"] == [kept_modality]
    assert set(served.stored(study)) == {i.sop_instance_uid for i in served.corpus if i.series_uid == kept}
    series = httpx.get(f"{served.base}/dicom-web/studies/{study}/series/{gone}/metadata", auth=BOB, timeout=10,
                       headers={"Accept": "application/dicom+json"})
    assert series.status_code == 404 and series.json()["error"] == f"series {gone} has been deleted"


def wait_for_job(served: Served, location: str) -> dict:
    deadline = time.monotonic() + SEND_WITHIN
    while True:
        job = httpx.get(f"{served.base}{location}", auth=ALICE, timeout=10).json()
        if job["state"] in ("done", "failed", "stopped") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_send_delivers_every_instance_to_storescp_and_reports_progress(served):
    study = served.studies[0]
    answer = httpx.post(f"{served.base}/api/studies/{study}/send", json={"node": "storescp"}, headers=ACTION,
                        auth=ALICE, timeout=10)
    assert answer.status_code == 202, answer.text
    assert answer.json()["total"] == 6 and answer.json()["state"] in ("queued", "running", "done")
    job = wait_for_job(served, answer.headers["location"])
    assert job["state"] == "done", job
    assert (job["done"], job["sent"], job["failed"], job["total"]) == (6, 6, 0, 6)
    assert job["message"] == "6 of 6 sent" and job["finished"]
    received = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in served.storescp.received()}
    assert set(served.stored(study)) <= received
    ended = [r for r in served.audit_records() if r.get("job") == job["id"]]
    assert [r["outcome"] for r in ended] == ["queued", "done"] and ended[1]["sent"] == 6
    listed = httpx.get(f"{served.base}/api/jobs", auth=ALICE, timeout=10).json()["jobs"]
    assert job["id"] in [j["id"] for j in listed]


def test_a_node_that_refuses_every_instance_is_reported_per_instance(served):
    study = served.studies[1]
    series = served.series_of(study)[0]
    answer = httpx.post(f"{served.base}/api/studies/{study}/series/{series}/send", json={"node": "refuser"},
                        headers=ACTION, auth=ALICE, timeout=10)
    assert answer.status_code == 202, answer.text
    job = wait_for_job(served, answer.headers["location"])
    assert job["state"] == "failed", job
    assert (job["done"], job["sent"], job["failed"], job["total"]) == (3, 0, 3, 3)
    assert {f["sop_instance_uid"] for f in job["failures"]} == set(served.stored(study, series))
    assert {f["status"] for f in job["failures"]} == {OUT_OF_RESOURCES}


def test_a_send_job_asked_to_stop_stops_after_the_instance_in_flight(served):
    study = served.studies[0]
    answer = httpx.post(f"{served.base}/api/studies/{study}/send", json={"node": "holder"}, headers=ACTION,
                        auth=ALICE, timeout=10)
    assert answer.status_code == 202, answer.text
    location = answer.headers["location"]
    assert served.holder.holding.wait(SEND_WITHIN), "the second instance reached the holder"
    assert httpx.delete(f"{served.base}{location}", auth=ALICE, timeout=10).status_code == 403, "CSRF header"
    assert httpx.delete(f"{served.base}{location}", headers=ACTION, auth=BOB, timeout=10).status_code == 403
    stopping = httpx.delete(f"{served.base}{location}", headers=ACTION, auth=ALICE, timeout=10)
    assert stopping.status_code == 202 and stopping.json()["message"].startswith("stopping")
    served.holder.release.set()
    job = wait_for_job(served, location)
    assert job["state"] == "stopped", job
    assert (job["sent"], job["failed"], job["total"]) == (2, 0, 6) and job["message"] == "stopped: 2 of 6 sent"
    assert served.holder.stores == 2, "nothing sent after the stop"
    again = httpx.delete(f"{served.base}{location}", headers=ACTION, auth=ALICE, timeout=10)
    assert again.status_code == 409 and "has ended (stopped)" in again.json()["error"]
    assert [r["outcome"] for r in served.audit_records() if r.get("job") == job["id"]] == \
        ["queued", "stop asked", "stopped"]


def test_bad_send_requests_are_refused(served):
    study = served.studies[0]
    url = f"{served.base}/api/studies/{study}/send"
    assert httpx.post(url, json={"node": "storescp"}, headers=ACTION, timeout=10).status_code == 401
    assert httpx.post(url, json={"node": "storescp"}, headers=ACTION, auth=BOB, timeout=10).status_code == 403
    assert httpx.post(url, json={"node": "storescp"}, auth=ALICE, timeout=10).status_code == 403
    unknown = httpx.post(url, json={"node": "nowhere"}, headers=ACTION, auth=ALICE, timeout=10)
    assert unknown.status_code == 404 and "known: holder, refuser, storescp" in unknown.json()["error"]
    web_only = httpx.post(url, json={"node": "web-only"}, headers=ACTION, auth=ALICE, timeout=10)
    assert web_only.status_code == 404
    garbled = httpx.post(url, content=b"node=storescp", headers=ACTION, auth=ALICE, timeout=10)
    assert garbled.status_code == 400 and "JSON" in garbled.json()["error"]
    nothing = httpx.post(f"{served.base}/api/studies/1.2.3.4/send", json={"node": "storescp"}, headers=ACTION,
                         auth=ALICE, timeout=10)
    assert nothing.status_code == 404
    assert httpx.get(f"{served.base}/api/jobs/0123", auth=ALICE, timeout=10).status_code == 404


def test_what_the_page_needs_to_show_its_buttons(served):
    assert httpx.get(f"{served.base}/api/me", auth=ALICE, timeout=10).json() == {
        "user": "alice", "actions": ["delete", "send"]}
    assert httpx.get(f"{served.base}/api/me", auth=BOB, timeout=10).json() == {"user": "bob", "actions": []}
    assert httpx.get(f"{served.base}/api/nodes", auth=BOB, timeout=10).json() == {"nodes": [
        {"name": "holder", "ae_title": "HOLDER"}, {"name": "refuser", "ae_title": "REFUSER"},
        {"name": "storescp", "ae_title": "STORESCP"}]}


def test_an_anonymous_local_server_deletes_only_when_configured(tmp_path, corpus):
    study = corpus[0].study_uid

    def started(**web: object) -> Archive:
        archive = Archive(Settings(ae_title="ARCHIVE", port=free_port(), bind_address="127.0.0.1",
                                   archive=ArchiveSettings(data_dir=tmp_path / "archive", fsync=False),
                                   web=WebSettings(port=free_port(), **web)))
        archive.start()
        return archive

    with started() as archive:
        assert not import_files(archive.ingest, [item.path for item in corpus[:6]]).failed
        base = f"http://127.0.0.1:{archive.settings.web.port}"
        refused = httpx.delete(f"{base}/api/studies/{study}", headers=ACTION, timeout=10)
    assert refused.status_code == 403 and "web.anonymous_actions" in refused.json()["error"]
    with started(anonymous_actions=["delete"]) as archive:
        base = f"http://127.0.0.1:{archive.settings.web.port}"
        assert httpx.get(f"{base}/api/me", timeout=10).json() == {"user": None, "actions": ["delete"]}
        assert httpx.delete(f"{base}/api/studies/{study}", headers=ACTION, timeout=10).status_code == 200
        assert archive.index.count() == 0


def test_a_delete_stopped_after_its_commit_is_finished_by_the_start_up_check(tmp_path, corpus):
    study = corpus[0].study_uid
    settings = Settings(ae_title="ARCHIVE", archive=ArchiveSettings(data_dir=tmp_path / "archive", fsync=False))
    with Archive(settings) as archive:
        assert not import_files(archive.ingest, [item.path for item in corpus[:6]]).failed
        files = [archive.ingest.files / item.path for item in archive.index.instances(
            Query(level=Level.STUDY, match={"StudyInstanceUID": study}))]
        for path in files:  # what deletion.delete does before its commit
            os.link(path, archive.ingest.scratch_path(".old"))
        assert len(archive.index.remove_under(study)) == 6
    with Archive(settings) as archive:
        recovered = archive.recover()
        assert len(recovered.removed_files) == 6
        assert not any(path.exists() for path in files)
        assert list(archive.ingest.scratch.iterdir()) == []


def test_deleting_on_a_postgresql_index_keeps_the_counts_right(tmp_path, corpus):
    study = corpus[0].study_uid
    gone, kept = list(dict.fromkeys(item.series_uid for item in corpus if item.study_uid == study))
    with fresh_database("pacskit_delete") as db:
        settings = Settings(ae_title="ARCHIVE", archive=ArchiveSettings(data_dir=tmp_path / "archive", db=db,
                                                                        fsync=False))
        with Archive(settings) as archive:
            assert not import_files(archive.ingest, [item.path for item in corpus[:12]]).failed
            deleted = delete(archive.index, archive.ingest, study, gone)
            assert deleted is not None and (deleted.series, deleted.instances) == ([gone], 3)
            [row] = archive.index.find(Query(level=Level.STUDY, match={"StudyInstanceUID": study},
                                             return_keys=("NumberOfStudyRelatedSeries",
                                                          "NumberOfStudyRelatedInstances")))
            assert (row.NumberOfStudyRelatedSeries, row.NumberOfStudyRelatedInstances) == (1, 3)
            assert delete(archive.index, archive.ingest, study) == Deleted(study, [kept], 3)
            assert delete(archive.index, archive.ingest, study) is None
            assert archive.index.count() == 6
