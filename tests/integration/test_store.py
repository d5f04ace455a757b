"""Sending files with C-STORE to DCMTK storescp, dcmqrscp and Orthanc: what arrives is
what was sent, byte for byte, and a peer that cannot take a syntax gets a conversion."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
from pathlib import Path

import pytest
from clirunner import assert_one_line_error, run_cli
from proxy import RecordingProxy
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import UID, generate_uid

from pacskit import AsyncClient, Client, Node, Settings
from pacskit.errors import AssociationAborted, PartialFailure
from pacskit.net.contexts import retrieve_storage_contexts
from pacskit.scan import read_file
from pacskit.testing.peers import Orthanc, StoreSCP, free_port
from pacskit.testing.samples import pydicom_samples


def node_of(peer) -> Node:
    return Node(ae_title=peer.ae_title, host=peer.host, port=peer.port)


def dataset_bytes(path: Path) -> bytes:
    """A Part 10 file's dataset, as encoded on disk (after the file meta information)."""
    return path.read_bytes()[read_file(path).dataset_offset:]


def received_by_uid(peer: StoreSCP) -> dict[str, Path]:
    return {read_file(p).sop_instance_uid: p for p in peer.received()}


@pytest.fixture
def mixed_folder(corpus_dir, tmp_path):
    """The corpus, with a text file and a truncated DICOM file among the instances."""
    folder = tmp_path / "mixed"
    shutil.copytree(corpus_dir, folder)
    (folder / "README.txt").write_text("not DICOM")
    first = next(folder.rglob("*.dcm"))
    (first.parent / "broken.dcm").write_bytes(first.read_bytes()[:100])
    return folder


def test_store_a_folder_recursively_byte_for_byte(storescp, corpus, mixed_folder):
    result = run_cli("store", mixed_folder, "--to", storescp.address)
    assert result.returncode == 0, result.stderr
    assert f"Stored {len(corpus)} files" in result.stdout
    assert "skipped 2 non-DICOM" in result.stdout
    received = received_by_uid(storescp)
    assert set(received) == {c.sop_instance_uid for c in corpus}
    for item in corpus:
        assert dataset_bytes(received[item.sop_instance_uid]) == dataset_bytes(item.path)


@pytest.mark.parametrize("option", ["--patient-id", "--study-uid", "--series-uid"])
def test_store_only_one_patient_study_or_series(storescp, corpus, corpus_dir, option):
    attribute = {"--patient-id": "patient_id", "--study-uid": "study_uid",
                 "--series-uid": "series_uid"}[option]
    wanted = sorted({getattr(c, attribute) for c in corpus})[1]
    items = [c for c in corpus if getattr(c, attribute) == wanted]
    result = run_cli("store", corpus_dir, "--to", storescp.address, option, wanted, "-f", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["filtered_out"]) == (len(items), len(corpus) - len(items))
    assert set(received_by_uid(storescp)) == {c.sop_instance_uid for c in items}


def test_parallel_associations_send_everything_once(storescp, corpus, corpus_dir):
    result = Client(Settings()).store([corpus_dir], node_of(storescp), parallel=3).raise_for_status()
    assert (result.sent, result.failed) == (len(corpus), 0)
    assert set(received_by_uid(storescp)) == {c.sop_instance_uid for c in corpus}


def test_pydicom_samples_arrive_unchanged_in_their_own_syntax(storescp):
    samples = pydicom_samples()
    result = Client(Settings()).store(samples, node_of(storescp)).raise_for_status()
    assert (result.sent, result.converted) == (len(samples), 0)
    received = received_by_uid(storescp)
    for path in samples:
        got = received[read_file(path).sop_instance_uid]
        assert read_file(got).transfer_syntax == read_file(path).transfer_syntax, path.name
        sent = dataset_bytes(path)
        padded = sent + b"\0" if len(sent) % 2 else sent  # an odd deflated stream, PS3.5 A.5
        assert dataset_bytes(got) == padded, path.name


def decodable(path: Path) -> bool:
    try:
        return dcmread(path).pixel_array is not None
    except Exception:  # noqa: BLE001 - any codec failure
        return False


def test_a_peer_without_compressed_syntaxes_gets_converted_files(tmp_path):
    compressed = [p for p in pydicom_samples() if UID(read_file(p).transfer_syntax).is_compressed]
    samples = [p for p in compressed if decodable(p)]
    undecodable = [p for p in compressed if p not in samples]
    assert len(samples) >= 4
    broken = tmp_path / "broken_j2k.dcm"
    ds = dcmread(next(p for p in samples if p.name == "JPEG2000.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 64])
    ds.save_as(broken)
    with StoreSCP(tmp_path / "scp", accept_all=False) as peer:
        result = Client(Settings()).store([*compressed, broken], node_of(peer))
        received = received_by_uid(peer)
    assert (result.sent, result.converted) == (len(samples), len(samples))
    assert {f.path for f in result.failures} == {broken, *undecodable}
    assert all("cannot decompress" in f.reason for f in result.failures)
    with pytest.raises(PartialFailure):
        result.raise_for_status()
    for path in samples:
        original = dcmread(path)
        got = dcmread(received[original.SOPInstanceUID])
        assert not got.file_meta.TransferSyntaxUID.is_compressed
        assert (got.pixel_array == original.pixel_array).all(), path.name
        assert got.StudyInstanceUID == original.StudyInstanceUID


def test_store_then_get_from_orthanc_round_trips(orthanc, tmp_path):
    samples = pydicom_samples()
    client = Client(Settings())
    before = orthanc.instance_count()
    stored = asyncio.run(AsyncClient(Settings()).store(samples, node_of(orthanc)))
    assert (stored.sent, stored.failed) == (len(samples), 0), stored.failures
    assert orthanc.instance_count() == before + len(samples)
    offered = {(cx.abstract_syntax, ts) for cx in retrieve_storage_contexts() for ts in cx.transfer_syntax}
    for path in samples:
        original = dcmread(path)
        got = client.get_instances(node_of(orthanc), original.StudyInstanceUID,
                                   original.SeriesInstanceUID, [original.SOPInstanceUID])
        (instance,) = got.raise_for_status().instances
        syntax = original.file_meta.TransferSyntaxUID
        if "PixelData" not in original:
            pass
        elif syntax.is_compressed and (original.SOPClassUID, syntax) in offered:
            assert instance.file_meta.TransferSyntaxUID == syntax, path.name
            assert instance.PixelData == original.PixelData, path.name
        elif not syntax.is_compressed and syntax.is_little_endian:
            assert instance.PixelData == original.PixelData, path.name
        elif decodable(path):
            assert (instance.pixel_array == original.pixel_array).all(), path.name
        for keyword in ("SOPClassUID", "StudyDate", "Modality", "SpecificCharacterSet",
                        "StudyDescription", "SeriesNumber", "InstitutionName"):
            assert instance.get(keyword) == original.get(keyword), (path.name, keyword)
        assert not instance.get("PatientName"), path.name


def test_store_to_dcmqrscp_then_find_it(dcmqrscp, corpus, tmp_path):
    sample = tmp_path / "new.dcm"
    ds = dcmread(corpus[0].path)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (generate_uid() for _ in range(3))
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(sample)
    result = run_cli("store", sample, "--to", dcmqrscp.address)
    assert result.returncode == 0, result.stderr
    found = run_cli("find", dcmqrscp.address, "--study-uid", ds.StudyInstanceUID, "-f", "dicom-json")
    assert found.returncode == 0, found.stderr
    assert [s["0020000D"]["Value"] for s in json.loads(found.stdout)] == [[ds.StudyInstanceUID]]


def test_a_connection_lost_mid_transfer_reports_what_was_not_stored(storescp, corpus, corpus_dir):
    proxy = RecordingProxy(storescp.host, storescp.port, cut_after=60_000)
    try:
        result = run_cli("store", corpus_dir, "--to", f"dicom://{storescp.ae_title}@127.0.0.1:{proxy.port}",
                         "-f", "json")
    finally:
        proxy.close()
    assert result.returncode in (15, 26), result.stderr
    assert "Traceback" not in result.stderr
    if result.returncode == 26:
        summary = json.loads(result.stdout)
        assert summary["sent"] + summary["failed"] == len(corpus)
        assert summary["sent"] == len(storescp.received())


def test_library_store_reports_a_lost_connection_when_nothing_was_stored(storescp, corpus_dir):
    proxy = RecordingProxy(storescp.host, storescp.port, cut_after=2_000)
    try:
        with pytest.raises(AssociationAborted):
            Client(Settings()).store([corpus_dir], Node(ae_title=storescp.ae_title,
                                                        host="127.0.0.1", port=proxy.port))
    finally:
        proxy.close()


@pytest.mark.parametrize(("args", "code", "text"), [
    (("store", "{corpus}", "--to", "NOWHERE"), 4, "NOWHERE"),
    (("store", "{corpus}", "--to", "dicom://X@127.0.0.1:{free}"), 12, "connection refused"),
    (("store", "/does/not/exist", "--to", "dicom://X@127.0.0.1:{free}"), 7, "/does/not/exist"),
    (("store", "{empty}", "--to", "dicom://X@127.0.0.1:{free}"), 7, "no DICOM file"),
    (("store", "{corpus}", "--to", "dicom://X@127.0.0.1:{free}", "--parallel", "0"), 7, "--parallel"),
])
def test_bad_input_gets_one_line_and_its_exit_code(args, code, text, corpus_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    values = {"corpus": corpus_dir, "free": free_port(), "empty": tmp_path / "empty"}
    assert_one_line_error(run_cli(*(str(a).format(**values) for a in args)), code, text)


def test_a_rejecting_peer_is_reported_with_its_reason(dcmqrscp, corpus_dir):
    wrong = f"dicom://NOT_ITS_AET@{dcmqrscp.host}:{dcmqrscp.port}"
    assert_one_line_error(run_cli("store", corpus_dir, "--to", wrong), 14, "called AE title not recognised")


@pytest.fixture
def with_a_bad_file(corpus_dir, tmp_path):
    """The corpus, and in its middle one more instance whose dataset ends in an element
    that claims 2 GiB it does not have: a peer reading the dataset waits for the rest
    (Orthanc, until its DicomScpTimeout) or cannot parse it (storescp), and aborts."""
    folder = tmp_path / "with-a-bad-file"
    shutil.copytree(corpus_dir, folder)
    files = sorted(folder.rglob("*.dcm"))
    source = files[len(files) // 2]
    ds = dcmread(source)
    assert not ds.file_meta.TransferSyntaxUID.is_implicit_VR
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    bad = source.parent / f"{source.stem}-bad.dcm"
    ds.save_as(bad)
    bad.write_bytes(bad.read_bytes() + b"\xe1\x7f\x10\x10OB\0\0" + struct.pack("<I", 0x7FFFFFF0) + bytes(64))
    return folder, bad


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_file_orthanc_aborts_on_fails_alone_and_every_other_file_is_stored(tmp_path, with_a_bad_file, corpus,
                                                                             parallel):
    folder, bad = with_a_bad_file
    with Orthanc(tmp_path / "orthanc", scp_timeout=1) as peer:
        result = run_cli("store", folder, "--to", peer.address, "--parallel", parallel, "-f", "json")
        stored = peer.instance_count()
    assert_one_line_error(result, 26, f"1 of {len(corpus) + 1} files were not stored (first: {bad.name}: "
                                      "the association was lost while sending it, twice: ")
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["failed"]) == (len(corpus), 1)
    [failure] = summary["failures"]
    assert failure["path"] == str(bad) and "aborted the association" in failure["reason"]
    assert stored == len(corpus)


def test_a_file_storescp_cannot_parse_fails_alone_and_the_store_goes_on(tmp_path, with_a_bad_file, corpus):
    folder, bad = with_a_bad_file
    with StoreSCP(tmp_path / "scp", bit_preserving=False) as peer:
        result = run_cli("store", folder, "--to", peer.address)
        received = received_by_uid(peer)
    assert_one_line_error(result, 26, f"1 of {len(corpus) + 1} files were not stored (first: {bad.name}")
    assert f"not stored: {bad}: the association was lost while sending it, twice" in result.stderr
    assert f"Stored {len(corpus)} files" in result.stdout
    assert set(received) == {c.sop_instance_uid for c in corpus}


def test_a_peer_that_aborts_every_file_is_given_up_on_after_three_associations(tmp_path, corpus_dir):
    peer = StoreSCP(tmp_path / "scp")
    peer.extra_args = ["--abort-after"]
    with peer:
        result = run_cli("store", corpus_dir, "--to", peer.address)
        log = peer.log()
    assert_one_line_error(result, 15, "3 associations in a row were lost (STORESCP@127.0.0.1:")
    assert log.count("Store SCP Failed") == 3


def test_a_file_whose_uids_cannot_be_sent_is_reported_not_a_crash(storescp, corpus, mixed_folder):
    ds = dcmread(corpus[0].path)
    ds.SOPInstanceUID = "not a UID " * 10
    ds.save_as(mixed_folder / "bad-uid.dcm")
    result = run_cli("store", mixed_folder, "--to", storescp.address)
    assert_one_line_error(result, 26, "bad-uid.dcm: its SOP Instance UID is not a UID ('not a UID not a UID")
    assert set(received_by_uid(storescp)) == {c.sop_instance_uid for c in corpus}
