"""pacskit's DICOMweb client (QIDO-RS, WADO-RS, STOW-RS) against Orthanc's DICOMweb plugin
and against `pacskit serve`: the same answers and the same files as over DIMSE."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from clirunner import assert_one_line_error, run_cli
from pydicom import dcmread
from pydicom.uid import generate_uid

from pacskit import Client, Node
from pacskit.archive import Archive
from pacskit.query import Query
from pacskit.scan import read_file
from pacskit.settings import ArchiveSettings, NodeConfig, Settings, WebSettings
from pacskit.testing.peers import Orthanc, free_port
from pacskit.web import multipart

ARCHIVE_AET = "ARCHIVE"

QUERIES = {
    "all studies": lambda first: Query.build("study"),
    "one patient's studies": lambda first: Query.build("study", patient_id=first.patient_id),
    "all series": lambda first: Query.build("series"),
    "series by modality": lambda first: Query.build("series", modality=first.modality),
    "all patients": lambda first: Query.build("patient"),
    "a date range": lambda first: Query.build("study", date="19000101-20991231"),
    "a wildcard": lambda first: Query.build("study", patient_id=first.patient_id[:-1] + "*"),
    "no results": lambda first: Query.build("study", patient_id="NOBODY"),
}
UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
          "IMAGE": "SOPInstanceUID"}


def archive_settings(tmp_path: Path, **web: object) -> Settings:
    nodes = {"dcmtk": NodeConfig(ae_title="DCMTK", host="127.0.0.1", port=free_port()),
             "PACSKIT": NodeConfig(ae_title="PACSKIT", host="127.0.0.1", port=free_port())}
    return Settings(ae_title=ARCHIVE_AET, port=free_port(), bind_address="127.0.0.1", nodes=nodes,
                    archive=ArchiveSettings(data_dir=tmp_path / "archive", fsync=False),
                    web=WebSettings(port=free_port(), **web))


@pytest.fixture(scope="module")
def archive(tmp_path_factory, corpus_dir):
    """`pacskit serve` holding the corpus, speaking DIMSE and DICOMweb."""
    with Archive(archive_settings(tmp_path_factory.mktemp("web-client"))) as served:
        served.start()
        Client(Settings(ae_title="PACSKIT")).store([corpus_dir], Node(
            ae_title=ARCHIVE_AET, host="127.0.0.1", port=served.settings.port)).raise_for_status()
        yield served


@pytest.fixture(scope="module", params=["orthanc", "pacskit"])
def peer(request, orthanc, archive):
    """(DICOMweb URL, DIMSE node) of a server holding the corpus."""
    if request.param == "orthanc":
        return orthanc.dicomweb_url, Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port)
    return (f"http://127.0.0.1:{archive.settings.web.port}/dicom-web",
            Node(ae_title=ARCHIVE_AET, host="127.0.0.1", port=archive.settings.port))


def client() -> Client:
    return Client(Settings(ae_title="PACSKIT"))


@pytest.mark.parametrize("name", list(QUERIES))
def test_qido_rs_answers_what_c_find_answers(peer, corpus, name):
    url, node = peer
    query = QUERIES[name](corpus[0])
    key = UNIQUE[query.level.value]
    over_web = client().find(url, query)
    over_dimse = client().find(node, query)
    assert sorted(str(m.get(key)) for m in over_web) == sorted(str(m.get(key)) for m in over_dimse)
    if name != "no results":
        assert over_web
    assert all("PatientName" not in m for m in over_web)


def test_qido_rs_at_every_level_of_one_study(peer, corpus):
    url, _ = peer
    first = corpus[0]
    series = client().find(url, Query.build("series", study_uid=first.study_uid))
    assert {str(s.SeriesInstanceUID) for s in series} == {i.series_uid for i in corpus if i.study_uid == first.study_uid}
    images = client().find(url, Query.build("image", study_uid=first.study_uid, series_uid=first.series_uid))
    assert {str(i.SOPInstanceUID) for i in images} == {i.sop_instance_uid for i in corpus
                                                        if i.series_uid == first.series_uid}
    assert len(client().find(url, Query.build("series", limit=2))) == 2


@pytest.mark.parametrize("wado_uri", [False, True], ids=["WADO-RS", "WADO-URI"])
def test_wado_retrieves_the_stored_files(peer, corpus, tmp_path, wado_uri):
    url, _ = peer
    first = corpus[0]
    study = [i for i in corpus if i.study_uid == first.study_uid]
    result = client().get_study(url, first.study_uid, tmp_path, wado_uri=wado_uri).raise_for_status()
    assert result.method == ("wado-uri" if wado_uri else "wado-rs")
    assert (result.written, result.completed, result.failed) == (len(study), len(study), 0)
    for item in study:
        written = dcmread(tmp_path / item.patient_id / item.study_uid / item.series_uid
                          / f"{item.sop_instance_uid}.dcm")
        original = dcmread(item.path)
        assert written.PixelData == original.PixelData
        assert written.PatientName == ""
        for keyword in ("PatientID", "StudyDate", "SeriesDescription", "InstanceNumber", "SOPClassUID"):
            assert written.get(keyword) == original.get(keyword)
    again = client().get_study(url, first.study_uid, tmp_path, wado_uri=wado_uri).raise_for_status()
    assert (again.written, again.skipped) == (0, len(study))


def test_wado_rs_parts_past_the_memory_limit_are_spooled_and_written_whole(peer, corpus, tmp_path, monkeypatch,
                                                                           spools):
    url, _ = peer
    first = corpus[0]
    study = [i for i in corpus if i.study_uid == first.study_uid]
    monkeypatch.setattr(multipart, "SPOOL_AFTER", 2048)
    result = client().get_study(url, first.study_uid, tmp_path).raise_for_status()
    assert (result.written, len(spools)) == (len(study), len(study))
    assert all(spool.closed for spool in spools)
    for item in study:
        written = dcmread(tmp_path / item.patient_id / item.study_uid / item.series_uid
                          / f"{item.sop_instance_uid}.dcm")
        assert written.PixelData == dcmread(item.path).PixelData
        assert written.PatientName == ""


def test_wado_rs_series_and_instance_to_memory(peer, corpus):
    url, _ = peer
    first = corpus[0]
    series = client().get_series(url, first.study_uid, first.series_uid).raise_for_status()
    assert {str(d.SOPInstanceUID) for d in series.instances} == {
        i.sop_instance_uid for i in corpus if i.series_uid == first.series_uid}
    one = client().get_instances(url, first.study_uid, first.series_uid, [first.sop_instance_uid])
    assert [str(d.SOPInstanceUID) for d in one.raise_for_status().instances] == [first.sop_instance_uid]
    assert all(d.PatientName == "" for d in series.instances)


def test_stow_rs_into_pacskit_then_c_find_and_c_get_give_it_back(tmp_path, corpus, corpus_dir):
    with Archive(archive_settings(tmp_path)) as fresh:
        fresh.start()
        url = f"http://127.0.0.1:{fresh.settings.web.port}/dicom-web"
        node = Node(ae_title=ARCHIVE_AET, host="127.0.0.1", port=fresh.settings.port)
        stored = client().store([corpus_dir], url, parallel=2).raise_for_status()
        assert (stored.sent, stored.failed) == (len(corpus), 0)
        found = client().find(node, Query.build("image"))
        assert {str(m.SOPInstanceUID) for m in found} == {i.sop_instance_uid for i in corpus}
        back = client().get(node, Query.build("study", study_uid=corpus[0].study_uid), tmp_path / "back")
        for path in back.raise_for_status().files:
            original = next(i for i in corpus if i.sop_instance_uid == dcmread(path).SOPInstanceUID)
            assert dcmread(path).PixelData == dcmread(original.path).PixelData


def test_c_store_into_orthanc_then_stow_rs_and_wado_rs(tmp_path, corpus, corpus_dir):
    with Orthanc(tmp_path / "orthanc") as orthanc:
        one_study = [i for i in corpus if i.study_uid == corpus[0].study_uid]
        node = Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port)
        client().store([one_study[0].path.parent.parent], node).raise_for_status()
        others = [i.path for i in corpus if i.study_uid != corpus[0].study_uid]
        stowed = client().store(others, orthanc.dicomweb_url, parallel=2).raise_for_status()
        assert stowed.sent == len(others)
        assert orthanc.instance_count() == len(corpus)
        got = client().get(orthanc.dicomweb_url, Query.build("study"), tmp_path / "out").raise_for_status()
        assert got.written == len(corpus)


def test_a_capped_search_is_read_page_after_page(tmp_path, corpus, corpus_dir):
    settings = archive_settings(tmp_path)
    settings.archive.find_limit = 5
    with Archive(settings) as capped:
        capped.start()
        url = f"http://127.0.0.1:{capped.settings.web.port}/dicom-web"
        client().store([corpus_dir], url).raise_for_status()
        one_page = httpx.get(f"{url}/instances")
        assert len(one_page.json()) == 5 and "additional results" in one_page.headers["warning"].lower()
        images = client().find(url, Query.build("image"))
        assert sorted(str(i.SOPInstanceUID) for i in images) == sorted(i.sop_instance_uid for i in corpus)
        assert len(client().find(url, Query.build("image", limit=7))) == 7


def test_cli_find_get_and_store_with_a_url(peer, corpus, tmp_path):
    url, _ = peer
    found = run_cli("find", url, "--level", "study", "--format", "dicom-json")
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert {r["0020000D"]["Value"][0] for r in rows} == {i.study_uid for i in corpus}
    assert "00100010" not in found.stdout and "PatientName" not in found.stderr
    got = run_cli("get", url, "--study-uid", corpus[0].study_uid, "-o", tmp_path)
    assert got.returncode == 0, got.stderr
    assert "WADO-RS" in got.stdout
    assert len(list(tmp_path.rglob("*.dcm"))) == sum(1 for i in corpus if i.study_uid == corpus[0].study_uid)


def test_a_named_dicomweb_node_with_credentials(tmp_path, corpus_dir, corpus):
    with Archive(archive_settings(tmp_path, users={"alice": "s3cret"})) as served:
        served.start()
        url = f"http://127.0.0.1:{served.settings.web.port}/dicom-web"
        (tmp_path / "pacskit.toml").write_text(
            f'[nodes.web]\ndicomweb_url = "{url}"\nusername = "alice"\npassword = "s3cret"\n')
        stored = run_cli("store", corpus_dir, "--to", "web", cwd=tmp_path)
        assert stored.returncode == 0, stored.stderr
        found = run_cli("find", "web", "--level", "series", "--format", "dicom-json", cwd=tmp_path)
        assert len(json.loads(found.stdout)) == len({i.series_uid for i in corpus})
        refused = run_cli("find", url, cwd=tmp_path)
        assert_one_line_error(refused, 16, "HTTP 401")
        wrong = run_cli("find", url.replace("http://", "http://alice:wrong@"), cwd=tmp_path)
        assert_one_line_error(wrong, 16, "HTTP 401")
        assert "wrong" not in wrong.stderr and "s3cret" not in stored.stderr + found.stderr


def test_dicom_only_commands_refuse_a_url(peer):
    url, _ = peer
    assert_one_line_error(run_cli("echo", url), 5, "is a DICOMweb URL")
    assert_one_line_error(run_cli("move", url, "--study-uid", "1.2.3", "--to", "X"), 5, "is a DICOMweb URL")


def test_nothing_listens_at_the_url():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert_one_line_error(run_cli("find", f"http://127.0.0.1:{port}/dicom-web"), 12, "cannot connect")


def test_an_unknown_study_is_no_match(peer, tmp_path):
    url, _ = peer
    result = run_cli("get", url, "--study-uid", "1.2.3.4.5.6.7.8.9", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No matches" in result.stderr
    assert not list(tmp_path.rglob("*"))


class _BrokenWado(BaseHTTPRequestHandler):
    """QIDO-RS lists one study; WADO-RS answers a multipart body cut off mid-part."""

    study = "1.2.3.4"
    instance = b""

    def do_GET(self) -> None:
        if "/studies?" in self.path:
            body = json.dumps([{"0020000D": {"vr": "UI", "Value": [self.study]},
                                "00201208": {"vr": "IS", "Value": [2]}}]).encode()
            self._send(200, "application/dicom+json", body)
        else:
            part = b"--xyz\r\nContent-Type: application/dicom\r\n\r\n" + self.instance + b"\r\n"
            self._send(200, 'multipart/related; type="application/dicom"; boundary=xyz',
                       part + part[: len(part) // 2])

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_truncated_wado_rs_response_keeps_only_whole_instances(corpus, tmp_path):
    _BrokenWado.instance = corpus[0].path.read_bytes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenWado)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
        result = run_cli("get", url, "-o", tmp_path / "out")
        assert_one_line_error(result, 27, "malformed after 1 instances")
        files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
        assert [p.name for p in files] == [f"{corpus[0].sop_instance_uid}.dcm"]
    finally:
        server.shutdown()


@pytest.fixture
def good_and_bad(tmp_path, corpus):
    """Three good instances of a new study, one whose dataset lacks its Study Instance
    UID, and one cut short 200 bytes into its dataset."""
    folder = tmp_path / "batch"
    folder.mkdir()
    study, series = generate_uid(), generate_uid()
    good = []
    for number, item in enumerate(corpus[:3]):
        ds = dcmread(item.path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(folder / f"good-{number}.dcm")
        good.append(str(ds.SOPInstanceUID))
    ds = dcmread(corpus[3].path)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    del ds.StudyInstanceUID
    ds.save_as(folder / "no-study.dcm")
    ds = dcmread(corpus[4].path)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(folder / "truncated.dcm")
    whole = (folder / "truncated.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(whole[:read_file(folder / "truncated.dcm").dataset_offset + 200])
    return folder, study, good


@contextmanager
def stow_server(kind: str, tmp_path: Path) -> Iterator[str]:
    """The DICOMweb URL of a fresh Orthanc or `pacskit serve`."""
    if kind == "orthanc":
        with Orthanc(tmp_path / "orthanc") as orthanc:
            yield orthanc.dicomweb_url
        return
    with Archive(archive_settings(tmp_path)) as served:
        served.start()
        yield f"http://127.0.0.1:{served.settings.web.port}/dicom-web"


@pytest.mark.parametrize(("kind", "no_study", "truncated"), [
    ("orthanc", "refused: 0xC000 (Cannot Understand)",
     "not in the server's STOW-RS response (HTTP 400 Bad Request)"),
    ("pacskit", "refused: 0xC000 (Cannot Understand): the dataset has no Study or Series Instance UID",
     "refused: 0xC000 (Cannot Understand): the dataset is malformed"),
])
def test_a_stow_rs_batch_of_good_and_bad_files_reports_each_with_the_servers_reason(tmp_path, good_and_bad, kind,
                                                                                    no_study, truncated):
    folder, study, good = good_and_bad
    with stow_server(kind, tmp_path) as url:
        result = run_cli("store", folder, "--to", url, "-f", "json")
        found = {str(m.SOPInstanceUID) for m in client().find(url, Query.build("image", study_uid=study))}
    assert_one_line_error(result, 26, f"2 of 5 files were not stored (first: no-study.dcm: {no_study})")
    summary = json.loads(result.stdout)
    assert summary["sent"] == 3
    assert {Path(f["path"]).name: f["reason"] for f in summary["failures"]} == {
        "no-study.dcm": no_study, "truncated.dcm": truncated}
    assert found == set(good)


def test_a_stow_rs_error_answer_becomes_its_one_line_reason(tmp_path, good_and_bad):
    folder, _, _ = good_and_bad
    with Orthanc(tmp_path / "orthanc") as orthanc:
        result = run_cli("store", folder / "good-0.dcm", "--to", orthanc.dicomweb_url + "-typo")
    assert_one_line_error(result, 27, "STOW-RS: HTTP 404 Not Found: Unknown resource")
