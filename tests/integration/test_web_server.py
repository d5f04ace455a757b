"""`pacskit serve` as a DICOMweb server (PS3.18), proven with the `dicomweb-client` package
(its library and its command line), DCMTK and raw HTTP: what DIMSE stores DICOMweb finds
and retrieves byte for byte, what STOW-RS stores C-FIND finds and C-GET retrieves, on
SQLite and PostgreSQL, and bad requests get the status PS3.18 gives them."""

from __future__ import annotations

import http.client
import io
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from postgres import fresh_database
from pydicom import dcmread
from pydicom.encaps import get_frame
from pydicom.filewriter import dcmwrite
from pydicom.pixels import pixel_array
from pydicom.uid import generate_uid
from requests import HTTPError

from pacskit import Client, Node
from pacskit.archive import Archive
from pacskit.archive.maintenance import import_files
from pacskit.encoded import parse_file_meta
from pacskit.errors import ConfigError, NetworkError
from pacskit.query import Query
from pacskit.scan import read_file
from pacskit.settings import ArchiveSettings, NodeConfig, Settings, WebSettings
from pacskit.testing.peers import free_port, peer_env, require, storescu
from pacskit.testing.samples import DATA, pydicom_samples

ARCHIVE_AET = "ARCHIVE"
MAX_BODY = 2 << 20
JPEG_BASELINE = DATA / "test_files/SC_rgb_jpeg_dcmtk.dcm"
JPEG_LS = DATA / "test_files/MR_small_jpeg_ls_lossless.dcm"
RTDOSE = DATA / "test_files/rtdose.dcm"
NOT_AN_IMAGE = DATA / "test_files/rtplan.dcm"


def web_settings(tmp_path: Path, db: str = "", **web: object) -> Settings:
    nodes = {"dcmtk": NodeConfig(ae_title="DCMTK", host="127.0.0.1", port=free_port()),
             "pacskit": NodeConfig(ae_title="PACSKIT", host="127.0.0.1", port=free_port())}
    return Settings(ae_title=ARCHIVE_AET, port=free_port(), bind_address="127.0.0.1", nodes=nodes,
                    archive=ArchiveSettings(data_dir=tmp_path / "archive", db=db, fsync=False),
                    web=WebSettings(port=free_port(), max_body=MAX_BODY, **web))


def url_of(archive: Archive) -> str:
    return f"http://127.0.0.1:{archive.settings.web.port}/dicom-web"


@pytest.fixture(scope="module")
def multiframe_rle(tmp_path_factory) -> Path:
    """pydicom's 2-frame RLE sample, with a SOP Instance UID of its own."""
    ds = dcmread(DATA / "test_files/SC_rgb_rle_2frame.dcm")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.1234.99.2"
    path = tmp_path_factory.mktemp("rle") / "rle_2frame.dcm"
    dcmwrite(path, ds)
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory, corpus_dir, multiframe_rle):
    """An archive holding the corpus (sent by DCMTK storescu) and pydicom's samples
    (imported), serving DICOMweb; on each kind of index."""
    with ExitStack() as stack:
        db = stack.enter_context(fresh_database("pacskit_web")) if request.param == "postgresql" else ""
        archive = stack.enter_context(Archive(web_settings(tmp_path_factory.mktemp("web"), db)))
        archive.start()
        storescu(ARCHIVE_AET, "127.0.0.1", archive.settings.port, [corpus_dir], calling="DCMTK")
        assert not import_files(archive.ingest, [*pydicom_samples(), multiframe_rle]).failed
        yield archive


@pytest.fixture
def fresh(tmp_path):
    """An empty archive (SQLite) serving DICOMweb."""
    with Archive(web_settings(tmp_path)) as archive:
        archive.start()
        yield archive


def sample(path: Path) -> tuple[str, str, str]:
    ds = dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def uids(results: list[dict], tag: str) -> set[str]:
    return {r[tag]["Value"][0] for r in results}


def test_search_matches_c_find_at_every_level(served, corpus):
    client = DICOMwebClient(url_of(served))
    corpus_studies = {c.study_uid for c in corpus}
    studies = client.search_for_studies(search_filters={"PatientID": "PAT07*"})
    assert uids(studies, "0020000D") == corpus_studies
    first = studies[0]
    for tag in ("00080020", "00080050", "00080061", "00100020", "00100010", "00201206", "00201208", "00081190"):
        assert first[tag].get("Value"), tag
    assert first["00080056"]["Value"] == ["ONLINE"]

    for filters in ({"ModalitiesInStudy": "MR"}, {"StudyDate": "20220101-"}, {"00100020": corpus[0].patient_id},
                    {"AccessionNumber": "ACC07*"}, {"StudyInstanceUID": ",".join(sorted(corpus_studies)[:2])}):
        over_http = uids(client.search_for_studies(search_filters=filters), "0020000D")
        query = Query(level="STUDY", match={k if not k.isdigit() else "PatientID": v.replace(",", "\\")
                                            for k, v in filters.items()})
        assert over_http == {d.StudyInstanceUID for d in served.index.find(query)}, filters
    assert uids(client.search_for_studies(search_filters={"ModalitiesInStudy": "MR", "PatientID": "PAT07*"}),
                "0020000D") == {c.study_uid for c in corpus if c.modality == "MR"}

    everything = client.search_for_studies()
    pages = [client.search_for_studies(limit=5, offset=offset) for offset in range(0, len(everything), 5)]
    assert [len(p) for p in pages[:-1]] == [5] * (len(pages) - 1)
    assert uids([r for p in pages for r in p], "0020000D") == uids(everything, "0020000D")
    assert uids(client.search_for_studies(get_remaining=True, limit=4), "0020000D") == uids(everything, "0020000D")

    with_fields = client.search_for_studies(search_filters={"PatientID": corpus[0].patient_id},
                                            fields=["InstitutionName", "00081030"])
    assert all(r["00080080"]["Value"] == ["pacskit synthetic hospital"] and r["00081030"]["Value"]
               for r in with_fields)
    assert "00101010" in client.search_for_studies(limit=1, fields=["all"])[0]

    study = corpus[0].study_uid
    series = client.search_for_series(study)
    assert uids(series, "0020000E") == {c.series_uid for c in corpus if c.study_uid == study}
    assert all(s["00201209"]["Value"] == [3] and s["00080060"]["Value"] for s in series)
    all_series = client.search_for_series(search_filters={"Modality": "CT"})
    assert {c.series_uid for c in corpus if c.modality == "CT"} <= uids(all_series, "0020000E")
    assert all("00080020" in s for s in all_series)
    instances = client.search_for_instances(study, corpus[0].series_uid)
    assert uids(instances, "00080018") == {c.sop_instance_uid for c in corpus if c.series_uid == corpus[0].series_uid}
    assert uids(client.search_for_instances(study), "00080018") == \
        {c.sop_instance_uid for c in corpus if c.study_uid == study}
    assert len(client.search_for_instances()) == served.index.count()
    assert client.search_for_studies(search_filters={"PatientID": "NOBODY"}) == []


def test_orderby_sorts_before_paging_and_count_counts(served, corpus):
    """dcm4chee-arc's two QIDO-RS extensions: ``orderby`` sorts the whole match list, so
    every page of a date-ordered list is the slice of the whole order; ``/count``
    answers the number of matches of the same search."""
    base = url_of(served)
    everything = httpx.get(f"{base}/studies", params={"includefield": "StudyTime"}).json()

    def when(study: dict) -> tuple[str, str]:
        return tuple(study.get(tag, {}).get("Value", [""])[0] for tag in ("00080020", "00080030"))

    newest = sorted(everything, key=lambda s: (when(s), ), reverse=True)
    assert len({when(s) for s in everything}) > 3, "the corpus has studies of several dates"
    pages = [httpx.get(f"{base}/studies", params={"orderby": "-StudyDate,-00080030", "limit": 4,
                                                  "offset": offset, "includefield": "StudyTime"}).json()
             for offset in range(0, len(everything), 4)]
    assert [when(s) for p in pages for s in p] == [when(s) for s in newest]
    assert uids([s for p in pages for s in p], "0020000D") == uids(everything, "0020000D")
    by_instances = httpx.get(f"{base}/studies", params={"orderby": "-NumberOfStudyRelatedInstances"}).json()
    counts = [s["00201208"]["Value"][0] for s in by_instances]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]

    assert httpx.get(f"{base}/studies/count").json() == {"count": len(everything)}
    assert httpx.get(f"{base}/studies/count", params={"PatientID": "PAT07*"}).json() == \
        {"count": len({c.study_uid for c in corpus})}
    assert httpx.get(f"{base}/studies/count", params={"ModalitiesInStudy": "MR", "PatientID": "PAT07*"}).json() == \
        {"count": len({c.study_uid for c in corpus if c.modality == "MR"})}
    study = corpus[0].study_uid
    assert httpx.get(f"{base}/studies/{study}/series/count").json() == \
        {"count": len({c.series_uid for c in corpus if c.study_uid == study})}
    assert httpx.get(f"{base}/instances/count").json() == {"count": served.index.count()}
    for params in ({"orderby": "SeriesNumber"}, {"orderby": "-"}, {"orderby": "NotAKeyword"},
                   {"orderby": "StudyDate,-StudyDate"}, {"orderby": "PatientWeight"}):
        response = httpx.get(f"{base}/studies", params=params)
        assert response.status_code == 400 and "orderby" in response.text, params


def test_dicomweb_client_command_line_searches(served, corpus):
    program = Path(sys.executable).parent / "dicomweb_client"
    result = subprocess.run([str(program), "--url", url_of(served), "search", "studies", "--filter",
                             f"PatientID={corpus[0].patient_id}", "--prettify"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    found = {uid for uid in {c.study_uid for c in corpus} if uid in result.stdout}
    assert found == {c.study_uid for c in corpus if c.patient_id == corpus[0].patient_id}


def test_retrieve_study_series_and_instance(served, corpus, multiframe_rle):
    client = DICOMwebClient(url_of(served))
    study = corpus[0].study_uid
    originals = {c.sop_instance_uid: dcmread(c.path) for c in corpus if c.study_uid == study}
    got = client.retrieve_study(study)
    assert {d.SOPInstanceUID for d in got} == set(originals)
    assert all(d.PixelData == originals[d.SOPInstanceUID].PixelData for d in got)
    assert all(d.PatientName == originals[d.SOPInstanceUID].PatientName for d in got)
    series = client.retrieve_series(study, corpus[0].series_uid)
    assert {d.SOPInstanceUID for d in series} == {c.sop_instance_uid for c in corpus if c.series_uid == corpus[0].series_uid}
    one = client.retrieve_instance(study, corpus[0].series_uid, corpus[0].sop_instance_uid)
    assert one.PixelData == originals[corpus[0].sop_instance_uid].PixelData

    for path in (JPEG_BASELINE, JPEG_LS, multiframe_rle, NOT_AN_IMAGE, RTDOSE):
        original = dcmread(path)
        stored = client.retrieve_instance(*sample(path))
        assert stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        if "PixelData" in original:
            assert stored.PixelData == original.PixelData
    decoded = client.retrieve_instance(*sample(JPEG_LS), media_types=(("application/dicom", "1.2.840.10008.1.2.1"),))
    assert decoded.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(decoded.pixel_array, dcmread(JPEG_LS).pixel_array)
    with pytest.raises(HTTPError, match="406"):
        client.retrieve_instance(*sample(JPEG_BASELINE), media_types=(("application/dicom", "1.2.840.10008.1.2.4.90"),))


def test_retrieve_streams_stored_bytes(served, corpus):
    url = f"{url_of(served)}/studies/{corpus[0].study_uid}/series/{corpus[0].series_uid}"
    with httpx.stream("GET", url, headers={"Accept": 'multipart/related; type="application/dicom"'}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith('multipart/related; type="application/dicom"')
        chunks = list(response.iter_bytes())
    body = b"".join(chunks)
    for c in corpus:
        if c.series_uid == corpus[0].series_uid:
            data = c.path.read_bytes()
            assert data[read_file(c.path).dataset_offset:] in body


def test_metadata(served, corpus):
    client = DICOMwebClient(url_of(served))
    study = corpus[0].study_uid
    metadata = client.retrieve_study_metadata(study)
    assert uids(metadata, "00080018") == {c.sop_instance_uid for c in corpus if c.study_uid == study}
    first = next(m for m in metadata if m["00080018"]["Value"][0] == corpus[0].sop_instance_uid)
    assert first["00100010"]["Value"][0]["Alphabetic"] == str(dcmread(corpus[0].path).PatientName)
    bulk = first["7FE00010"]["BulkDataURI"]
    assert bulk.endswith(f"/instances/{corpus[0].sop_instance_uid}/frames/1")
    assert bulk.startswith(url_of(served))
    frame = httpx.get(bulk, headers={"Accept": "*/*"})
    assert frame.status_code == 200 and dcmread(corpus[0].path).PixelData in frame.content
    assert len(client.retrieve_series_metadata(study, corpus[0].series_uid)) == 3
    instance = client.retrieve_instance_metadata(*sample(DATA / "charset_files/chrRuss.dcm"))
    assert instance["00100010"]["Value"][0]["Alphabetic"] == str(dcmread(DATA / "charset_files/chrRuss.dcm").PatientName)


def test_other_bulk_data_is_a_uri_that_dicomweb_client_retrieves(served):
    client = DICOMwebClient(url_of(served))
    ct_small = DATA / "test_files/CT_small.dcm"
    instance = client.retrieve_instance_metadata(*sample(ct_small))
    private = instance["00431029"]
    assert private["vr"] == "OB" and "InlineBinary" not in private
    assert client.retrieve_bulkdata(private["BulkDataURI"]) == [dcmread(ct_small)[0x00431029].value]
    base = private["BulkDataURI"].rsplit("/", 1)[0]
    assert httpx.get(f"{base}/00080018").status_code == 404
    assert httpx.get(f"{base}/7FE00010").status_code == 404
    assert httpx.get(f"{base}/notatag").status_code == 400


def test_frames(served, corpus, multiframe_rle):
    client = DICOMwebClient(url_of(served))
    (native,) = client.retrieve_instance_frames(corpus[0].study_uid, corpus[0].series_uid,
                                                corpus[0].sop_instance_uid, [1])
    assert native == dcmread(corpus[0].path).PixelData
    original = dcmread(multiframe_rle)
    frames = client.retrieve_instance_frames(*sample(multiframe_rle), [2, 1])
    assert frames == [get_frame(original.PixelData, i, number_of_frames=original.NumberOfFrames) for i in (1, 0)]
    jpeg = dcmread(JPEG_BASELINE)
    (compressed,) = client.retrieve_instance_frames(*sample(JPEG_BASELINE), [1], media_types=("image/jpeg",))
    assert compressed == get_frame(jpeg.PixelData, 0, number_of_frames=1)
    (decoded,) = client.retrieve_instance_frames(
        *sample(JPEG_LS), [1], media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),))
    assert decoded == pixel_array(dcmread(JPEG_LS), raw=True).astype("<i2").tobytes()
    dose = dcmread(RTDOSE)
    size = dose.Rows * dose.Columns * dose.BitsAllocated // 8
    assert client.retrieve_instance_frames(*sample(RTDOSE), [3, 15]) == [
        dose.PixelData[2 * size:3 * size], dose.PixelData[14 * size:15 * size]]
    with pytest.raises(HTTPError, match="404"):
        client.retrieve_instance_frames(*sample(JPEG_BASELINE), [2])


def test_rendered(served, corpus, multiframe_rle):
    client = DICOMwebClient(url_of(served))
    jpeg = client.retrieve_instance_rendered(corpus[0].study_uid, corpus[0].series_uid, corpus[0].sop_instance_uid)
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (64, 64) and image.mode == "L"
    png = client.retrieve_instance_rendered(*sample(JPEG_BASELINE), media_types=("image/png",))
    image = Image.open(io.BytesIO(png))
    original = dcmread(JPEG_BASELINE)
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (original.Columns, original.Rows)
    assert np.abs(np.asarray(image, dtype=int) - original.pixel_array.astype(int)).max() <= 1
    frame = client.retrieve_instance_frames_rendered(*sample(multiframe_rle), [2], media_types=("image/png",))
    expected = pixel_array(dcmread(multiframe_rle), index=1)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(frame))), expected)
    dose = client.retrieve_instance_frames_rendered(*sample(RTDOSE), [15])
    assert Image.open(io.BytesIO(dose)).size == (dcmread(RTDOSE).Columns, dcmread(RTDOSE).Rows)
    windowed = httpx.get(f"{url_of(served)}/studies/{corpus[0].study_uid}/series/{corpus[0].series_uid}/instances/"
                         f"{corpus[0].sop_instance_uid}/rendered", params={"window": "100,50,linear"},
                         headers={"Accept": "image/png"})
    assert windowed.headers["content-type"] == "image/png" and windowed.content != jpeg


def test_wado_uri(served, corpus):
    wado = f"http://127.0.0.1:{served.settings.web.port}/wado"
    item = corpus[0]
    params = {"requestType": "WADO", "studyUID": item.study_uid, "seriesUID": item.series_uid,
              "objectUID": item.sop_instance_uid}
    dicom = httpx.get(wado, params={**params, "contentType": "application/dicom"})
    assert dicom.status_code == 200 and dicom.headers["content-type"] == "application/dicom"
    original = item.path.read_bytes()
    assert dicom.content[dataset_offset(dicom.content):] == original[dataset_offset(original):]
    default = httpx.get(wado, params=params)
    assert default.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(default.content)).size == (64, 64)
    study, series, sop = sample(NOT_AN_IMAGE)
    plan = httpx.get(wado, params={"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop})
    assert plan.headers["content-type"] == "application/dicom"
    png = httpx.get(wado, params={**params, "contentType": "image/png", "windowCenter": "500", "windowWidth": "1000"})
    assert png.headers["content-type"] == "image/png"
    assert httpx.get(wado, params={**params, "requestType": "OTHER"}).status_code == 400
    assert httpx.get(wado, params={**params, "objectUID": "1.2.3.4"}).status_code == 404
    assert httpx.get(wado, params={**params, "contentType": "text/html"}).status_code == 406


def test_store_then_c_find_and_c_get(fresh, corpus, tmp_path):
    client = DICOMwebClient(url_of(fresh), chunk_size=4096)
    study = generate_uid()
    sent: dict[str, bytes] = {}
    datasets = []
    for item in corpus[:4]:
        ds = dcmread(item.path)
        ds.StudyInstanceUID, ds.SOPInstanceUID = study, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        buffer = io.BytesIO()
        dcmwrite(buffer, ds)
        sent[ds.SOPInstanceUID] = buffer.getvalue()
        datasets.append(ds)
    response = client.store_instances(datasets)
    assert {i.ReferencedSOPInstanceUID for i in response.ReferencedSOPSequence} == set(sent)
    assert "FailedSOPSequence" not in response and response.RetrieveURL.endswith(f"/studies/{study}")

    node = Node(ae_title=ARCHIVE_AET, host="127.0.0.1", port=fresh.settings.port)
    found = Client(Settings(ae_title="PACSKIT")).find(node, Query.build("image", study_uid=study))
    assert {d.SOPInstanceUID for d in found} == set(sent)
    out = tmp_path / "got"
    out.mkdir()
    result = subprocess.run([require("getscu"), "-aet", "DCMTK", "-aec", ARCHIVE_AET, "-S", "-k",
                             "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "-od", str(out),
                             "127.0.0.1", str(fresh.settings.port)],
                            capture_output=True, text=True, env=peer_env(), timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    got = sorted(out.iterdir())
    assert len(got) == len(sent)
    for path in got:
        data = path.read_bytes()
        original = sent[read_file(path).sop_instance_uid]
        assert data[dataset_offset(data):] == original[dataset_offset(original):]


def dataset_offset(data: bytes) -> int:
    offset = parse_file_meta(data)[1]
    assert offset is not None
    return offset


def multipart(*parts: bytes, boundary: str = "XyZ", content_type: str = "application/dicom") -> bytes:
    body = b"".join(f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + p + b"\r\n" for p in parts)
    return body + f"--{boundary}--\r\n".encode()


def stow(archive: Archive, body: bytes, content_type: str, path: str = "/studies", **kwargs) -> httpx.Response:
    return httpx.post(f"{url_of(archive)}{path}", content=body, headers={"Content-Type": content_type}, **kwargs)


def test_store_bad_input(fresh, corpus):
    good, other = corpus[0].path.read_bytes(), corpus[-1].path.read_bytes()
    quoted = stow(fresh, multipart(good), 'multipart/related; type="application/dicom"; boundary="XyZ"')
    assert quoted.status_code == 200 and quoted.headers["content-type"] == "application/dicom+json"
    assert fresh.index.count() == 1

    truncated = stow(fresh, multipart(other)[:-9], "multipart/related; type=application/dicom; boundary=XyZ")
    assert truncated.status_code == 400 and "closing delimiter" in truncated.text
    assert fresh.index.count() == 1 and not list(fresh.ingest.scratch.iterdir())

    mixed = stow(fresh, multipart(other, b"not DICOM at all" * 20), "multipart/related; boundary=XyZ")
    assert mixed.status_code == 202
    body = mixed.json()
    assert body["00081199"]["Value"][0]["00081155"]["Value"] == [corpus[-1].sop_instance_uid]
    assert body["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]
    assert fresh.index.count() == 2

    elsewhere = stow(fresh, multipart(corpus[1].path.read_bytes()), "multipart/related; boundary=XyZ",
                     path=f"/studies/{corpus[-1].study_uid}")
    assert elsewhere.status_code == 409
    assert elsewhere.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xA900]

    assert stow(fresh, good, "application/dicom").status_code == 415
    assert stow(fresh, multipart(good), 'multipart/related; type="application/dicom+json"; boundary=XyZ').status_code == 415
    assert stow(fresh, multipart(good), "multipart/related; type=application/dicom").status_code == 400

    big = multipart(b"\0" * (MAX_BODY + 1))
    assert stow(fresh, big, "multipart/related; boundary=XyZ").status_code == 413

    def chunked():
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    over = stow(fresh, chunked(), "multipart/related; boundary=XyZ")
    assert over.status_code == 413
    assert fresh.index.count() == 2 and not list(fresh.ingest.scratch.iterdir())


def raw_get(archive: Archive, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", archive.settings.web.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_bad_requests(served, corpus):
    base = url_of(served)
    item = corpus[0]
    instance = f"/dicom-web/studies/{item.study_uid}/series/{item.series_uid}/instances/{item.sop_instance_uid}"
    for path in ("/dicom-web/studies/..", "/dicom-web/studies/../../../../etc/passwd",
                 "/dicom-web/studies/..%2F..%2F..%2Fetc%2Fpasswd", f"/dicom-web/studies/{item.study_uid}/series/..",
                 "/dicom-web/studies/1.2.3%2F..%2F..%2Findex.db"):
        status, body = raw_get(served, path)
        assert status in (400, 404) and b"root:" not in body and b"SQLite" not in body, path
    assert httpx.get(f"{base}/studies/1.2.3.4").status_code == 404
    assert httpx.get(f"{base}/studies/{item.study_uid}/series/1.2.3.4/metadata").status_code == 404
    assert httpx.get(f"{base}/studies/{item.study_uid}/series/{item.series_uid}/instances/1.2.3").status_code == 404
    assert httpx.get(f"{base}/studies/{item.study_uid}", headers={"Accept": "text/html"}).status_code == 406
    assert httpx.get(f"{base}/studies/{item.study_uid}/metadata", headers={"Accept": "image/png"}).status_code == 406
    assert raw_get(served, f"{instance}/rendered", {"Accept": "application/pdf"})[0] == 406
    assert raw_get(served, f"{instance}/frames/1", {"Accept": "image/jpeg"})[0] == 406
    assert raw_get(served, f"{instance}/frames/0")[0] == 400
    for params in ({"NotAKeyword": "1"}, {"limit": "many"}, {"StudyDate": "2020-13"}, {"Modality": "CT"},
                   {"fuzzymatching": "maybe"}, {"PatientID": ["A", "B"]}, {"StudyInstanceUID": "1..2"}):
        response = httpx.get(f"{base}/studies", params=params)
        assert response.status_code == 400 and response.text.strip(), params
    fuzzy = httpx.get(f"{base}/studies", params={"fuzzymatching": "true", "PatientID": item.patient_id})
    assert fuzzy.status_code == 200 and "fuzzymatching" in fuzzy.headers["warning"]
    assert raw_get(served, "/dicom-web/openapi.json")[0] == 200
    described = httpx.get(f"{base}/openapi.json").json()["paths"]
    assert "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}" in described
    assert {"/studies/count", "/api/studies/{study}", "/api/studies/{study}/send", "/api/jobs/{job}",
            "/api/me"} <= set(described)
    assert described["/api/me"]["servers"] == [{"url": base.removesuffix("/dicom-web")}]
    assert "delete" in described["/api/studies/{study}"]


def test_authentication_and_cors(tmp_path, corpus):
    settings = web_settings(tmp_path, users={"alice": "s3cret"}, tokens=["t0ken"],
                            cors_origins=["https://viewer.example"])
    with Archive(settings) as archive:
        archive.start()
        import_files(archive.ingest, [corpus[0].path])
        base = url_of(archive)
        refused = httpx.get(f"{base}/studies")
        assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]
        assert httpx.get(f"{base}/studies", auth=("alice", "wrong")).status_code == 401
        assert httpx.get(f"{base}/studies", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{settings.web.port}/wado").status_code == 401
        assert len(httpx.get(f"{base}/studies", auth=("alice", "s3cret")).json()) == 1
        client = DICOMwebClient(base, headers={"Authorization": "Bearer t0ken"})
        assert len(client.search_for_studies()) == 1
        preflight = httpx.options(f"{base}/studies", headers={
            "Origin": "https://viewer.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://viewer.example"
        answered = httpx.get(f"{base}/studies", headers={"Origin": "https://viewer.example"}, auth=("alice", "s3cret"))
        assert answered.headers["access-control-allow-origin"] == "https://viewer.example"


def test_settings_and_a_port_in_use(tmp_path, monkeypatch):
    monkeypatch.setenv("PACSKIT_WEB__PORT", "9123")
    monkeypatch.setenv("PACSKIT_WEB__TOKENS", '["abc"]')
    loaded = Settings()
    assert loaded.web.port == 9123 and loaded.web.tokens == ["abc"] and loaded.web.bind == "127.0.0.1"
    monkeypatch.delenv("PACSKIT_WEB__TOKENS")
    with pytest.raises(ConfigError, match="open to the network"):
        Settings.load(None, web={"bind": "0.0.0.0"})
    assert Settings.load(None, web={"bind": "0.0.0.0", "allow_anonymous_remote": True}).web.bind == "0.0.0.0"
    assert Settings.load(None, web={"bind": "0.0.0.0", "users": {"a": "b"}}).web.authenticated

    settings = web_settings(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", settings.web.port))
        busy.listen(1)
        with Archive(settings) as archive, pytest.raises(NetworkError, match="address already in use"):
            archive.start()
    with Archive(settings) as archive:
        archive.start()
        assert httpx.get(f"{url_of(archive)}/studies").json() == []


def test_serve_command_line(tmp_path, corpus):
    port, http_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-m", "pacskit", "--aet", ARCHIVE_AET, "--port", str(port), "serve",
                               "--data-dir", str(tmp_path / "data"), "--no-fsync", "--http-port", str(http_port)],
                              stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{http_port}/dicom-web"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/studies").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        stored = DICOMwebClient(url).store_instances([dcmread(corpus[0].path)])
        assert len(stored.ReferencedSOPSequence) == 1
        assert uids(DICOMwebClient(url).search_for_studies(), "0020000D") == {corpus[0].study_uid}
    finally:
        server.terminate()
        _, log = server.communicate(timeout=30)
    assert server.returncode == 0, log
    assert f"DICOMweb on http://127.0.0.1:{http_port}/dicom-web" in log
