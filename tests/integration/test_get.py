"""Retrieving with C-GET and C-MOVE from DCMTK dcmqrscp and Orthanc, into folders and
memory: what arrives is the corpus, byte for byte in its pixel data, without names."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest
from clirunner import assert_one_line_error, run_cli
from proxy import RecordingProxy
from pydicom import dcmread
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet
from scripted_peer import ScriptedPeer

import pacskit.net.retrieve as net_retrieve
from pacskit import AsyncClient, Client, Node, Settings
from pacskit.errors import InstancesNotReceived, MoveDestinationUnknown, ServiceNotSupported
from pacskit.net.commands import C_MOVE_RSP, MESSAGE_ID, MOVE_DESTINATION, retrieve_rsp
from pacskit.net.store import send_files
from pacskit.privacy import PATIENT_NAME_KEYWORDS
from pacskit.scan import read_file
from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import DcmQrSCP, free_port

OUR_AET = "PACSKIT"


@pytest.fixture(params=["dcmqrscp", "orthanc"])
def peer(request):
    return request.getfixturevalue(request.param)


def node_of(peer) -> Node:
    return Node(ae_title=peer.ae_title, host=peer.host, port=peer.port)


def by_uid(corpus):
    return {c.sop_instance_uid: c for c in corpus}


def assert_same_as_corpus(files: list[Path], corpus_items) -> None:
    """Each file is its corpus instance: same attributes, same pixel bytes, no names."""
    expected = by_uid(corpus_items)
    seen = set()
    for path in files:
        got = dcmread(path)
        original = dcmread(expected[got.SOPInstanceUID].path)
        seen.add(got.SOPInstanceUID)
        assert got.PixelData == original.PixelData
        for keyword in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "StudyDate",
                        "Modality", "SOPClassUID", "AccessionNumber", "Rows"):
            assert got.get(keyword) == original.get(keyword), keyword
        assert original.PatientName, "the corpus must carry names for this test to mean anything"
        for keyword in PATIENT_NAME_KEYWORDS:
            assert not got.get(keyword)
    assert seen == set(expected)


def dicom_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.dcm"))


def test_get_study_by_c_get_into_the_default_layout(peer, corpus, tmp_path):
    study = sorted({c.study_uid for c in corpus})[0]
    items = [c for c in corpus if c.study_uid == study]
    result = run_cli("get", peer.address, "--study-uid", study, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert f"Retrieved {len(items)} instances" in result.stdout
    files = dicom_files(tmp_path / "out")
    assert_same_as_corpus(files, items)
    for path in files:
        rel = path.relative_to(tmp_path / "out").parts
        item = by_uid(corpus)[path.stem]
        assert rel == (item.patient_id, item.study_uid, item.series_uid, f"{item.sop_instance_uid}.dcm")
    assert not [p for p in (tmp_path / "out").rglob(".*")], "temporary files left behind"


def test_get_by_query_resolves_matches_first(peer, corpus, tmp_path):
    patient = sorted({c.patient_id for c in corpus})[1]
    items = [c for c in corpus if c.patient_id == patient and c.modality == "MR"]
    assert items
    result = run_cli("get", peer.address, "-l", "series", "-p", patient, "--modality", "MR",
                     "-o", tmp_path, "--layout", "{Modality}/{SeriesInstanceUID}/{InstanceNumber:03d}_{SOPInstanceUID}.dcm",
                     "-f", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["written"] == len(items) and summary["failed"] == 0
    files = dicom_files(tmp_path)
    assert_same_as_corpus(files, items)
    assert all(p.relative_to(tmp_path).parts[0] == "MR" for p in files)


def test_rerun_skips_what_is_there_and_overwrite_replaces(orthanc, corpus, tmp_path):
    study = sorted({c.study_uid for c in corpus})[1]
    first = json.loads(run_cli("get", orthanc.address, "--study-uid", study, "-o", tmp_path, "-f", "json").stdout)
    assert first["written"] == 6
    victim = dicom_files(tmp_path)[0]
    victim.write_bytes(b"damaged")
    again = json.loads(run_cli("get", orthanc.address, "--study-uid", study, "-o", tmp_path, "-f", "json").stdout)
    assert (again["written"], again["skipped"]) == (0, 6)
    assert victim.read_bytes() == b"damaged"
    forced = json.loads(run_cli("get", orthanc.address, "--study-uid", study, "-o", tmp_path,
                                "--overwrite", "-f", "json").stdout)
    assert forced["written"] == 6
    assert dcmread(victim).SOPInstanceUID == victim.stem


def test_library_get_to_memory_and_async_twins(orthanc, corpus):
    client = Client(Settings())
    study = sorted({c.study_uid for c in corpus})[0]
    series = sorted({c.series_uid for c in corpus if c.study_uid == study})[0]
    result = client.get_study(node_of(orthanc), study).raise_for_status()
    assert len(result.instances) == 6 and result.completed == 6
    assert all(not ds.PatientName for ds in result.instances)
    expected = {c.sop_instance_uid for c in corpus if c.series_uid == series}
    uids = sorted(expected)[:2]
    seen = []

    async def main():
        aclient = AsyncClient(Settings())
        series_result = await aclient.get_series(node_of(orthanc), study, series, progress=seen.append)
        some = await aclient.get_instances(node_of(orthanc), study, series, uids)
        return series_result, some

    series_result, some = asyncio.run(main())
    assert {ds.SOPInstanceUID for ds in series_result.instances} == expected
    assert {ds.SOPInstanceUID for ds in some.instances} == set(uids)
    assert seen and seen[-1].received == 3 and seen[-1].total == 3


def test_names_kept_with_the_explicit_opt_in(orthanc, corpus, tmp_path):
    study = sorted({c.study_uid for c in corpus})[0]
    result = run_cli("get", orthanc.address, "--study-uid", study, "-o", tmp_path,
                     env={"PACSKIT_ALLOW_PATIENT_NAMES": "1"})
    assert result.returncode == 0, result.stderr
    assert all(dcmread(p).PatientName for p in dicom_files(tmp_path))


def test_get_by_c_move_to_ourselves(moving_dcmqrscp, corpus, tmp_path, our_port):
    patient = sorted({c.patient_id for c in corpus})[0]
    items = [c for c in corpus if c.patient_id == patient]
    result = run_cli("--aet", OUR_AET, "--port", our_port, "get", moving_dcmqrscp.address,
                     "-p", patient, "--method", "move", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "by C-MOVE" in result.stdout
    assert_same_as_corpus(dicom_files(tmp_path), items)


def test_orthanc_moves_to_pacskit_with_the_names_withheld(orthanc, corpus, tmp_path, our_port):
    orthanc.add_modality("pacskit", OUR_AET, "127.0.0.1", our_port)
    study = sorted({c.study_uid for c in corpus})[1]
    result = Client(Settings(ae_title=OUR_AET, port=our_port)).get_study(
        node_of(orthanc), study, tmp_path, method="move").raise_for_status()
    assert (result.method, result.completed, result.written) == ("move", 6, 6)
    assert_same_as_corpus(dicom_files(tmp_path), [c for c in corpus if c.study_uid == study])


def test_auto_falls_back_to_move_when_c_get_is_refused(moving_dcmqrscp, corpus, tmp_path, our_port):
    study = sorted({c.study_uid for c in corpus})[2]
    settings = Settings(ae_title=OUR_AET, port=our_port)
    with pytest.raises(ServiceNotSupported):
        Client(settings).get_study(node_of(moving_dcmqrscp), study, tmp_path)
    result = run_cli("--aet", OUR_AET, "--port", our_port, "get", moving_dcmqrscp.address,
                     "--study-uid", study, "--method", "auto", "-o", tmp_path, "-f", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["method"] == "move" and summary["written"] == 6
    refused = run_cli("get", moving_dcmqrscp.address, "--study-uid", study, "-o", tmp_path)
    assert_one_line_error(refused, 22, "does not offer C-GET")


def test_move_to_ourselves_unknown_to_the_peer_says_how_to_fix_it(dcmqrscp, orthanc, corpus, tmp_path):
    study = sorted({c.study_uid for c in corpus})[0]
    settings = Settings(ae_title="STRANGER", port=free_port())
    with pytest.raises(MoveDestinationUnknown):
        Client(settings).get_study(node_of(dcmqrscp), study, tmp_path, method="move")
    result = run_cli("--aet", "STRANGER", "--port", free_port(), "get", dcmqrscp.address,
                     "--study-uid", study, "--method", "move", "-o", tmp_path)
    assert_one_line_error(result, 24, "0xA801 (Move destination unknown): register AE title 'STRANGER'")
    # Orthanc answers a plain failure (0xC000) for an unknown destination: the hint stays.
    result = run_cli("--aet", "STRANGER", "--port", free_port(), "get", orthanc.address,
                     "--study-uid", study, "--method", "move", "-o", tmp_path)
    assert_one_line_error(result, 21, "register AE title 'STRANGER'")
    assert not dicom_files(tmp_path)


def test_a_move_the_peer_sends_elsewhere_is_an_error_that_says_what_to_check(orthanc, storescp, corpus,
                                                                          tmp_path, our_port):
    """Orthanc has our AE title with another port (a storescp's): it reports every
    sub-operation completed, and none reaches us."""
    study = sorted({c.study_uid for c in corpus})[2]
    items = [c for c in corpus if c.study_uid == study]
    orthanc.add_modality("pacskit", OUR_AET, "127.0.0.1", storescp.port)
    try:
        result = run_cli("--aet", OUR_AET, "--port", our_port, "get", orthanc.address, "--study-uid", study,
                         "--method", "move", "-o", tmp_path / "elsewhere")
        assert_one_line_error(result, 28, f"6 instances reported sent by {node_of(orthanc).label} did not "
                                          f"arrive (none of 6 came; it never connected to us): check that it "
                                          f"has AE title {OUR_AET!r} at host 127.0.0.1 port {our_port}")
        assert "peer reports 6 completed" in result.stdout
        assert not dicom_files(tmp_path / "elsewhere")
        assert {read_file(p).sop_instance_uid for p in storescp.received()} == {c.sop_instance_uid for c in items}

        got = Client(Settings(ae_title=OUR_AET, port=our_port)).get_study(node_of(orthanc), study, method="move")
        assert (got.completed, got.received, got.not_received) == (6, 0, 6)
        assert (got.delivery.ae_title, got.delivery.port, got.delivery.connections) == (OUR_AET, our_port, 0)
        with pytest.raises(InstancesNotReceived, match="none of 6 came"):
            got.raise_for_status()

        orthanc.add_modality("pacskit", OUR_AET, "127.0.0.1", our_port)
        right = run_cli("--aet", OUR_AET, "--port", our_port, "get", orthanc.address, "--study-uid", study,
                        "--method", "move", "-o", tmp_path / "here")
        assert right.returncode == 0, right.stderr
        assert_same_as_corpus(dicom_files(tmp_path / "here"), items)
    finally:
        orthanc.add_modality("pacskit", OUR_AET, "127.0.0.1", our_port)


def test_dcmqrscp_with_our_ae_title_at_another_port(tmp_path, corpus_dir, corpus, storescp):
    our_port = free_port()
    with DcmQrSCP(tmp_path / "q", move_destinations={OUR_AET: ("127.0.0.1", storescp.port)}) as peer:
        peer.load([corpus_dir])
        patient = sorted({c.patient_id for c in corpus})[0]
        result = run_cli("--aet", OUR_AET, "--port", our_port, "get", peer.address, "-p", patient,
                         "--method", "move", "-o", tmp_path / "out", "-f", "json")
    assert_one_line_error(result, 28, f"check that it has AE title {OUR_AET!r} at host 127.0.0.1 port {our_port}")
    summary = json.loads(result.stdout)
    assert (summary["completed"], summary["received"], summary["not_received"]) == (12, 0, 12)
    assert len(storescp.received()) == 12
    assert not dicom_files(tmp_path / "out")


def lying_move(files: list[Path], our_port: int, deliver: int, final_first: bool):
    """A C-MOVE SCP script: report every file completed, and deliver ``deliver`` of them
    to the move destination at ``our_port`` — before the final response, or once the
    C-MOVE association is released (as a PACS that queues its sub-operations does)."""

    def script(conversation):
        request = conversation.receive()
        destination = Node(ae_title=request.text(MOVE_DESTINATION), host="127.0.0.1", port=our_port)
        sop_class = conversation.contexts[request.context_id][0]

        def send():
            send_files(Settings(ae_title="LIAR"), destination, [read_file(p) for p in files[:deliver]],
                       lambda outcome: None)

        if not final_first:
            send()
        conversation.channel.send(request.context_id, retrieve_rsp(
            C_MOVE_RSP, request.us(MESSAGE_ID) or 0, sop_class, 0x0000, (None, len(files), 0, 0)))
        if final_first:
            conversation.release()
            send()

    return script


def test_instances_delivered_after_the_final_move_response_are_waited_for(corpus, tmp_path):
    series = sorted({c.series_uid for c in corpus})[0]
    items = [c for c in corpus if c.series_uid == series]
    our_port = free_port()
    with ScriptedPeer("LIAR", lying_move([c.path for c in items], our_port, len(items), True)) as peer:
        result = run_cli("--aet", OUR_AET, "--port", our_port, "get", peer.address, "-l", "series",
                         "--study-uid", items[0].study_uid, "--series-uid", series, "--method", "move",
                         "-o", tmp_path)
        assert peer.done.wait(10)
    assert result.returncode == 0, result.stderr
    assert_same_as_corpus(dicom_files(tmp_path), items)
    assert not peer.errors, peer.errors


def test_fewer_instances_than_reported_is_an_error_with_the_count(corpus, tmp_path):
    series = sorted({c.series_uid for c in corpus})[1]
    items = [c for c in corpus if c.series_uid == series]
    our_port = free_port()
    with ScriptedPeer("LIAR", lying_move([c.path for c in items], our_port, 2, False)) as peer:
        result = run_cli("--aet", OUR_AET, "--port", our_port, "get", peer.address, "-l", "series",
                         "--study-uid", items[0].study_uid, "--series-uid", series, "--method", "move",
                         "-o", tmp_path)
        assert peer.done.wait(10) and not peer.errors, peer.errors
    assert_one_line_error(result, 28, "1 instance reported sent by LIAR@127.0.0.1:"
                                      f"{peer.port} did not arrive (2 of 3 came, over 1 association): "
                                      f"check that it has AE title {OUR_AET!r} at host 127.0.0.1 port {our_port}")
    assert len(dicom_files(tmp_path)) == 2


def test_move_to_a_third_party(orthanc, storescp, corpus):
    orthanc.add_modality("store", storescp.ae_title, storescp.host, storescp.port)
    study = sorted({c.study_uid for c in corpus})[3]
    result = run_cli("move", orthanc.address, "--study-uid", study, "--to", storescp.ae_title)
    assert result.returncode == 0, result.stderr
    assert "6 completed, 0 failed" in result.stdout
    assert_same_as_corpus_keep_names(storescp.received(), [c for c in corpus if c.study_uid == study])
    unknown = run_cli("move", orthanc.address, "--study-uid", study, "--to", "NOWHERE")
    assert_one_line_error(unknown, 21, "C-MOVE failed")


def assert_same_as_corpus_keep_names(files, items):
    """A third party receives the peer's data untouched: pacskit only asked for the move."""
    assert {dcmread(p).SOPInstanceUID for p in files} == {c.sop_instance_uid for c in items}


def test_move_from_dcmqrscp_to_storescp(tmp_path, corpus_dir, corpus, storescp):
    with DcmQrSCP(tmp_path / "q", move_destinations={storescp.ae_title: (storescp.host, storescp.port)}) as peer:
        peer.load([corpus_dir])
        patient = sorted({c.patient_id for c in corpus})[1]
        result = run_cli("move", peer.address, "-p", patient, "--to", storescp.ae_title, "-f", "json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["completed"] == 12
        unknown = run_cli("move", peer.address, "-p", patient, "--to", "NOWHERE")
        assert_one_line_error(unknown, 24, "0xA801")
    assert len(storescp.received()) == 12


def test_output_folder_that_cannot_be_written(orthanc, corpus, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    study = sorted({c.study_uid for c in corpus})[0]
    result = run_cli("get", orthanc.address, "--study-uid", study, "-o", blocker / "sub")
    assert_one_line_error(result, 30, "cannot write to")


def test_disk_full_mid_retrieve_leaves_no_partial_file(orthanc, corpus, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        patient = sorted({c.patient_id for c in corpus})[0]
        result = run_cli("get", orthanc.address, "-p", patient, "-o", mount)
        written = dicom_files(mount)
        assert 0 < len(written) < 12
        assert result.returncode == 26, result.stderr
        assert "disk full" in result.stderr
        assert not [p for p in mount.rglob(".*")], "temporary files left behind"
        for path in written:
            assert dcmread(path).SOPInstanceUID == path.stem
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_bad_layout_is_a_usage_error_refused_before_any_network(tmp_path):
    for layout, message in (("{Nope}/{SOPInstanceUID}", "not a DICOM keyword"), ("/abs/{SOPInstanceUID}", "relative"),
                            ("../{SOPInstanceUID}", "'..'"), ("{Modality}/", "file name")):
        result = run_cli("get", "dicom://NOBODY@127.0.0.1:1", "-o", tmp_path / "out", "--layout", layout)
        assert_one_line_error(result, 2, message)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def same_numbers(tmp_path_factory):
    """One MR series of three instances, two of them with InstanceNumber 1."""
    made = generate_corpus(tmp_path_factory.mktemp("same-numbers"), patients=1, studies_per_patient=1,
                           series_per_study=1, instances_per_series=3, seed=21, modalities=("MR",))
    second = dcmread(made[1].path)
    second.InstanceNumber = 1
    second.save_as(made[1].path)
    return made


def test_the_readme_layout_without_sop_instance_uid_keeps_every_instance(peer, same_numbers, tmp_path):
    peer.load([m.path for m in same_numbers])
    patient, series = same_numbers[0].patient_id, same_numbers[0].series_uid
    readme = ["get", peer.address, "-p", patient, "--modality", "MR", "-l", "series", "-o", tmp_path,
              "--layout", "{Modality}/{SeriesInstanceUID}/{InstanceNumber:04d}.dcm", "-f", "json"]
    first = run_cli(*readme)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["written"] == 3
    folder = tmp_path / "MR" / series
    files = {p.name: dcmread(p) for p in folder.iterdir()}
    assert set(files) == {"0001.dcm", "0001-2.dcm", "0003.dcm"}
    assert {str(ds.SOPInstanceUID) for ds in files.values()} == {m.sop_instance_uid for m in same_numbers}
    assert files["0001.dcm"].InstanceNumber == files["0001-2.dcm"].InstanceNumber == 1
    held = {name: (ds.SOPInstanceUID, (folder / name).read_bytes()) for name, ds in files.items()}

    again = json.loads(run_cli(*readme).stdout)
    assert (again["written"], again["skipped"]) == (0, 3)
    assert {p.name for p in folder.iterdir()} == set(held)
    assert all((folder / name).read_bytes() == data for name, (_, data) in held.items())

    damaged = folder / "0001-2.dcm"
    damaged.write_bytes(held["0001-2.dcm"][1][:-8] + b"DAMAGED!")
    forced = json.loads(run_cli(*readme, "--overwrite").stdout)
    assert (forced["written"], forced["skipped"]) == (3, 0)
    assert {p.name for p in folder.iterdir()} == set(held)
    assert all((folder / name).read_bytes() == data for name, (_, data) in held.items())


def test_query_with_no_match_retrieves_nothing(orthanc, tmp_path):
    result = run_cli("get", orthanc.address, "-p", "NOBODY_HERE", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No matches" in result.stderr


def test_a_peer_lost_mid_retrieve_leaves_only_whole_files(orthanc, corpus, tmp_path):
    study = sorted({c.study_uid for c in corpus})[1]
    proxy = RecordingProxy(orthanc.host, orthanc.port, cut_after_received=25_000)
    try:
        result = run_cli("get", f"dicom://{orthanc.ae_title}@127.0.0.1:{proxy.port}",
                         "--study-uid", study, "-o", tmp_path)
    finally:
        proxy.close()
    assert_one_line_error(result, 15, "connection")
    written = dicom_files(tmp_path)
    assert 0 < len(written) < 6
    assert not [p for p in tmp_path.rglob(".*")], "temporary files left behind"
    assert_same_as_corpus(written, [c for c in corpus if c.sop_instance_uid in {p.stem for p in written}])


def test_the_dimse_timeout_is_per_message_not_per_retrieve(orthanc, corpus, tmp_path):
    study = sorted({c.study_uid for c in corpus})[2]
    proxy = RecordingProxy(orthanc.host, orthanc.port, delay=0.25)
    try:
        started = time.monotonic()
        result = run_cli("--dimse-timeout", "1", "get", f"dicom://{orthanc.ae_title}@127.0.0.1:{proxy.port}",
                         "--study-uid", study, "-o", tmp_path, "-f", "json")
        elapsed = time.monotonic() - started
    finally:
        proxy.close()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["written"] == 6
    assert elapsed > 1.5, "the retrieve must outlast one DIMSE timeout for this test to mean anything"


def test_a_peer_that_falls_silent_mid_retrieve_times_out(orthanc, corpus, tmp_path):
    study = sorted({c.study_uid for c in corpus})[3]
    proxy = RecordingProxy(orthanc.host, orthanc.port, stall_after_received=25_000)
    try:
        started = time.monotonic()
        result = run_cli("--dimse-timeout", "1", "get", f"dicom://{orthanc.ae_title}@127.0.0.1:{proxy.port}",
                         "--study-uid", study, "-o", tmp_path)
        elapsed = time.monotonic() - started
    finally:
        proxy.close()
    assert_one_line_error(result, 13, "within 1 s")
    assert elapsed < 10
    assert not [p for p in tmp_path.rglob(".*")], "temporary files left behind"


@pytest.fixture
def get_scp_without_storage_role():
    """pynetdicom's own Query/Retrieve SCP, which offers C-GET but, not configured for
    role selection, refuses to let the requestor act as Storage SCP."""
    ae = AE(ae_title="NOROLE")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    for cx in StoragePresentationContexts[:20]:
        ae.add_supported_context(cx.abstract_syntax)
    server = ae.start_server(("127.0.0.1", free_port()), block=False)
    yield Node(ae_title="NOROLE", host="127.0.0.1", port=server.server_address[1])
    server.shutdown()


def test_no_storage_role_is_a_clear_error(get_scp_without_storage_role, tmp_path):
    node = get_scp_without_storage_role
    result = run_cli("get", f"dicom://{node.address}", "--study-uid", "1.2.3", "-o", tmp_path)
    assert_one_line_error(result, 23, "not pacskit as Storage SCP")


@pytest.mark.parametrize("method", ["get", "move"])
def test_instances_past_the_memory_limit_are_spooled_and_arrive_intact(orthanc, corpus, tmp_path, our_port,
                                                                       monkeypatch, spools, method):
    orthanc.add_modality("pacskit", OUR_AET, "127.0.0.1", our_port)
    study = sorted({c.study_uid for c in corpus})[0]
    items = [c for c in corpus if c.study_uid == study]
    monkeypatch.setattr(net_retrieve, "SPOOL_AFTER", 2048)
    result = Client(Settings(ae_title=OUR_AET, port=our_port)).get_study(
        node_of(orthanc), study, tmp_path, method=method).raise_for_status()
    assert (result.written, len(spools)) == (len(items), len(items))
    assert all(spool.closed for spool in spools)
    assert_same_as_corpus(dicom_files(tmp_path), items)
