"""Which transfer syntax `pacskit serve`'s WADO-RS sends (PS3.18 8.7.3): Explicit VR Little
Endian when the request names none (Table 8.7.3-2), as stored for ``transfer-syntax=*``,
the syntax asked for when it can; 206 when some instances of a study cannot be converted,
406 when none can. Proven with raw HTTP and with dicomweb-client on pydicom's compressed
test files; pacskit's own client keeps asking for instances as stored."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import httpx
import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread
from pydicom.filewriter import dcmwrite
from pydicom.uid import generate_uid
from served import served_archive, web_url

from pacskit import Client, Settings
from pacskit.encoded import parse_file_meta
from pacskit.query import Query
from pacskit.testing.samples import DATA
from pacskit.web.media import MediaType
from pacskit.web.multipart import iter_parts

EXPLICIT_LE = "1.2.840.10008.1.2.1"
MPEG4 = "1.2.840.10008.1.2.4.102"
DICOM_PARTS = 'multipart/related; type="application/dicom"'
COMPRESSED = {
    "JPEG baseline": DATA / "test_files/SC_rgb_jpeg_dcmtk.dcm",
    "JPEG 2000": DATA / "test_files/JPEG2000.dcm",
    "JPEG-LS": DATA / "test_files/MR_small_jpeg_ls_lossless.dcm",
    "RLE": DATA / "test_files/SC_rgb_rle.dcm",
    "deflated": DATA / "test_files/image_dfl.dcm",
    "big endian": DATA / "test_files/ExplVR_BigEnd.dcm",
    "implicit VR": DATA / "test_files/rtdose.dcm",
}
UNDECODABLE_DATA = DATA / "test_files/JPEG-lossy.dcm"  # a decoder is installed, but fails on it


def copy_into(source: Path, target: Path, study: str, *, transfer_syntax: str | None = None) -> Path:
    """``source`` as a new instance of ``study``, of one patient (the archive refuses a
    study shared by two), in another transfer syntax's name if given."""
    ds = dcmread(source)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, generate_uid(), generate_uid()
    ds.PatientID = "WADO-SYNTAXES"
    ds.pop("IssuerOfPatientID", None)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if transfer_syntax:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    dcmwrite(target, ds, enforce_file_format=True)
    return target


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Studies of one instance that cannot be converted (MPEG-4, no decoder) with one that
    can, of the MPEG-4 one alone, and of one whose data its decoder fails on."""
    folder = tmp_path_factory.mktemp("mixed")
    studies = {"video and image": generate_uid(), "video": generate_uid(), "undecodable": generate_uid()}
    files = [
        copy_into(DATA / "test_files/CT_small.dcm", folder / "ct.dcm", studies["video and image"]),
        copy_into(COMPRESSED["JPEG baseline"], folder / "video.dcm", studies["video and image"], transfer_syntax=MPEG4),
        copy_into(COMPRESSED["JPEG baseline"], folder / "video-alone.dcm", studies["video"], transfer_syntax=MPEG4),
        copy_into(DATA / "test_files/CT_small.dcm", folder / "ct-2.dcm", studies["undecodable"]),
        copy_into(UNDECODABLE_DATA, folder / "lossy.dcm", studies["undecodable"]),
    ]
    return studies, files


@pytest.fixture(scope="module")
def archive(tmp_path_factory, mixed):
    with served_archive(tmp_path_factory.mktemp("wado-ts"), [*COMPRESSED.values(), *mixed[1]]) as served:
        yield served


def uids(path: Path) -> tuple[str, str, str]:
    ds = dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def retrieve(archive, resource: str, accept: str | None) -> tuple[httpx.Response, list[tuple[str, bytes]]]:
    """A WADO-RS response and its parts (Content-Type, body)."""
    headers = {"Accept": accept} if accept is not None else {}
    response = httpx.get(f"{web_url(archive)}/{resource}", headers=headers, timeout=60)
    media = MediaType.parse(response.headers.get("content-type", ""))
    if media.type != "multipart/related":
        return response, []
    parts = [(h["content-type"], bytes(b) if isinstance(b, bytes) else b.read())
             for h, b in iter_parts(io.BytesIO(response.content), media.params["boundary"])]
    return response, parts


def stored_dataset(data: bytes) -> bytes:
    return data[parse_file_meta(data)[1]:]


@pytest.mark.parametrize("name", COMPRESSED)
@pytest.mark.parametrize("accept", [DICOM_PARTS, None, "*/*", 'multipart/related; type="application/*"'],
                         ids=["dicom-parts", "no-accept", "any", "application-any"])
def test_no_transfer_syntax_is_explicit_vr_little_endian(archive, name, accept):
    path = COMPRESSED[name]
    study, series, sop = uids(path)
    response, parts = retrieve(archive, f"studies/{study}/series/{series}/instances/{sop}", accept)
    assert response.status_code == 200, response.text
    assert MediaType.parse(response.headers["content-type"]).params["transfer-syntax"] == EXPLICIT_LE
    [(content_type, body)] = parts
    assert content_type == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    sent, original = dcmread(io.BytesIO(body)), dcmread(path)
    assert sent.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert sent.SOPInstanceUID == original.SOPInstanceUID
    if "PixelData" in original:
        assert np.array_equal(sent.pixel_array, original.pixel_array)


def test_a_series_of_compressed_instances_is_streamed_in_explicit_vr_little_endian(archive):
    jpeg, rle = COMPRESSED["JPEG baseline"], COMPRESSED["RLE"]
    study, series, _ = uids(jpeg)
    assert uids(rle)[:2] == (study, series)
    for resource in (f"studies/{study}", f"studies/{study}/series/{series}"):
        response, parts = retrieve(archive, resource, DICOM_PARTS)
        assert response.status_code == 200
        assert {t for t, _ in parts} == {f"application/dicom; transfer-syntax={EXPLICIT_LE}"}
        sent = {d.SOPInstanceUID: d for d in (dcmread(io.BytesIO(body)) for _, body in parts)}
        for path in (jpeg, rle):
            original = dcmread(path)
            assert np.array_equal(sent[original.SOPInstanceUID].pixel_array, original.pixel_array)


@pytest.mark.parametrize("name", COMPRESSED)
def test_transfer_syntax_star_is_as_stored(archive, name):
    path = COMPRESSED[name]
    study, series, sop = uids(path)
    stored = str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    for resource in (f"studies/{study}/series/{series}", f"studies/{study}/series/{series}/instances/{sop}"):
        response, parts = retrieve(archive, resource, f"{DICOM_PARTS}; transfer-syntax=*")
        assert response.status_code == 200
        [(content_type, body)] = [(t, b) for t, b in parts if dcmread(io.BytesIO(b)).SOPInstanceUID == sop]
        assert content_type == f"application/dicom; transfer-syntax={stored}"
        assert stored_dataset(body) == stored_dataset(path.read_bytes())


def test_an_explicit_transfer_syntax_is_sent_when_it_can_be(archive):
    jpeg = COMPRESSED["JPEG baseline"]
    study, series, sop = uids(jpeg)
    instance = f"studies/{study}/series/{series}/instances/{sop}"
    as_jpeg, [(content_type, body)] = retrieve(archive, instance, f"{DICOM_PARTS}; transfer-syntax=1.2.840.10008.1.2.4.50")
    assert content_type.endswith("transfer-syntax=1.2.840.10008.1.2.4.50")
    assert stored_dataset(body) == stored_dataset(jpeg.read_bytes())
    decoded, [(_, body)] = retrieve(archive, instance, f"{DICOM_PARTS}; transfer-syntax={EXPLICIT_LE}")
    assert dcmread(io.BytesIO(body)).SOPInstanceUID == sop
    by_uri = httpx.get(f"http://127.0.0.1:{archive.settings.web.port}/wado", params={
        "requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop,
        "contentType": "application/dicom", "transferSyntax": EXPLICIT_LE})
    assert dcmread(io.BytesIO(by_uri.content)).SOPInstanceUID == sop
    alone = httpx.get(f"{web_url(archive)}/{instance}", headers={"Accept": "application/dicom"})
    assert alone.headers["content-type"] == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    assert dcmread(io.BytesIO(alone.content)).file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert retrieve(archive, instance, f"{DICOM_PARTS}; transfer-syntax=1.2.840.10008.1.2.4.90")[0].status_code == 406
    preferred, [(content_type, _)] = retrieve(
        archive, instance, f"{DICOM_PARTS}; transfer-syntax=1.2.840.10008.1.2.4.90, {DICOM_PARTS}; q=0.5")
    assert preferred.status_code == 200 and content_type.endswith(EXPLICIT_LE)


def test_instances_that_cannot_be_converted_are_left_out_with_206_or_406(archive, mixed, caplog):
    studies, files = mixed
    ct = dcmread(files[0], stop_before_pixels=True).SOPInstanceUID
    response, parts = retrieve(archive, f"studies/{studies['video and image']}", DICOM_PARTS)
    assert response.status_code == 206
    assert "1 of 2 instances cannot be sent in 1.2.840.10008.1.2.1" in response.headers["warning"]
    assert [dcmread(io.BytesIO(body)).SOPInstanceUID for _, body in parts] == [ct]
    everything, parts = retrieve(archive, f"studies/{studies['video and image']}", f"{DICOM_PARTS}; transfer-syntax=*")
    assert everything.status_code == 200 and sorted(t.rsplit("=", 1)[1] for t, _ in parts) == [EXPLICIT_LE, MPEG4]
    assert retrieve(archive, f"studies/{studies['video']}", DICOM_PARTS)[0].status_code == 406
    _, series, sop = uids(files[2])
    alone = httpx.get(f"{web_url(archive)}/studies/{studies['video']}/series/{series}/instances/{sop}",
                      headers={"Accept": "application/dicom"})
    assert alone.status_code == 406

    caplog.set_level(logging.WARNING, logger="pacskit.web")
    failing, parts = retrieve(archive, f"studies/{studies['undecodable']}", DICOM_PARTS)
    lossy = dcmread(files[4], stop_before_pixels=True).SOPInstanceUID
    assert failing.status_code == 200
    assert [dcmread(io.BytesIO(body)).SOPInstanceUID for _, body in parts] == [
        dcmread(files[3], stop_before_pixels=True).SOPInstanceUID]
    assert f"instance {lossy} left out" in caplog.text
    _, series, sop = uids(files[4])
    single = httpx.get(f"{web_url(archive)}/studies/{studies['undecodable']}/series/{series}/instances/{sop}",
                       headers={"Accept": DICOM_PARTS})
    assert single.status_code == 406


def test_dicomweb_client_gets_explicit_vr_little_endian_unless_it_asks_for_any(archive):
    client = DICOMwebClient(web_url(archive))
    for path in COMPRESSED.values():
        study, series, sop = uids(path)
        original = dcmread(path)
        for retrieved in (client.retrieve_study(study), client.retrieve_series(study, series)):
            [default] = [d for d in retrieved if d.SOPInstanceUID == sop]
            assert default.file_meta.TransferSyntaxUID == EXPLICIT_LE
            if "PixelData" in original:
                assert np.array_equal(default.pixel_array, original.pixel_array)
        [as_stored] = [d for d in client.retrieve_study(study, media_types=(("application/dicom", "*"),))
                       if d.SOPInstanceUID == sop]
        assert as_stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert client.retrieve_instance(study, series, sop).file_meta.TransferSyntaxUID == \
            original.file_meta.TransferSyntaxUID


def test_pacskit_client_still_gets_instances_as_stored(archive, tmp_path):
    for name in ("JPEG baseline", "JPEG 2000", "JPEG-LS", "implicit VR"):
        path = COMPRESSED[name]
        study, series, sop = uids(path)
        result = Client(Settings()).get(web_url(archive), Query.build("image", study_uid=study, series_uid=series,
                                                                          sop_instance_uid=sop), tmp_path / name)
        [written] = result.raise_for_status().files
        assert dcmread(written).file_meta.TransferSyntaxUID == dcmread(path).file_meta.TransferSyntaxUID
        assert dcmread(written).PixelData == dcmread(path).PixelData
