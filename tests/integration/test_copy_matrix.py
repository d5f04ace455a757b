"""`pacskit copy FROM TO` for every pair of places — DCMTK dcmqrscp, Orthanc (DIMSE and
DICOMweb), `pacskit serve`, the archive, a folder: the same query moves the same
instances, with the same pixel data and attributes, and names withheld where the
destination is on the client side. Each place holds a study of its own; the pair
FROM→TO copies FROM's study into TO, read back with `Client.get`."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from clirunner import logging_restored
from pydicom import dcmread
from served import CLIENT_NODES, served_archive

from pacskit import Client, Settings
from pacskit.archive.index import Index
from pacskit.archive.ingest import Ingest
from pacskit.archive.maintenance import import_files
from pacskit.cli.main import main
from pacskit.privacy import PATIENT_NAME_KEYWORDS
from pacskit.query import Level, Query
from pacskit.settings import ArchiveSettings
from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import DcmQrSCP, Orthanc, StoreSCP

PLACES = ["dcmqrscp", "orthanc-dimse", "orthanc-web", "serve", "archive", "folder"]
CLIENT_SIDE = {"archive", "folder"}
SAME_STORE = {frozenset({"orthanc-dimse", "orthanc-web"})}
ATTRIBUTES = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
              "StudyDate", "Modality", "AccessionNumber", "Rows", "Columns")


def _study(root: Path, seed: int) -> list:
    return generate_corpus(root, patients=1, studies_per_patient=1, series_per_study=2,
                           instances_per_series=2, seed=seed)


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """Each place's address, and the study it holds (its corpus instances)."""
    root = tmp_path_factory.mktemp("matrix")
    studies = {name: _study(root / "corpus" / name, 40 + i) for i, name in enumerate(PLACES) if name != "folder"}
    studies["folder"] = _study(root / "folder", 49)
    with pytest.MonkeyPatch.context() as env, DcmQrSCP(root / "dcmqrscp") as dcmqrscp, \
            Orthanc(root / "orthanc") as orthanc, \
            served_archive(root / "serve", [c.path for c in studies["serve"]], nodes=CLIENT_NODES) as serve:
        env.chdir(root)
        env.setenv("PACSKIT_ARCHIVE__DATA_DIR", str(root / "archive"))
        env.setenv("PACSKIT_AE_TITLE", "PACSKIT")
        dcmqrscp.load([c.path for c in studies["dcmqrscp"]])
        orthanc.load([c.path for c in studies["orthanc-dimse"] + studies["orthanc-web"]])
        local = ArchiveSettings(data_dir=root / "archive", fsync=False)
        local.data_dir.mkdir()
        index = Index.open(local.db_url())
        try:
            ingest = Ingest(local, index)
            assert not import_files(ingest, [c.path for c in studies["archive"]]).failed
            ingest.close()
        finally:
            index.close()
        addresses = {
            "dcmqrscp": dcmqrscp.address,
            "orthanc-dimse": orthanc.address,
            "orthanc-web": orthanc.dicomweb_url,
            "serve": f"dicom://ARCHIVE@127.0.0.1:{serve.settings.port}",
            "archive": "archive",
            "folder": str(root / "folder"),
        }
        yield {"addresses": addresses, "studies": studies, "root": root, "serve": serve}


def cli(capsys, *args: object) -> tuple[int, str, str]:
    """``pacskit ARGS...`` run in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    with logging_restored(), pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def held(places, name: str, study: str) -> dict:
    """What place ``name`` holds of ``study``, read back by `Client.get` into memory."""
    client = Client(Settings.load())
    result = client.get(places["addresses"][name], Query.build(Level.STUDY, study_uid=study))
    return {str(ds.SOPInstanceUID): ds for ds in result.instances}


def files_of(places, name: str) -> dict:
    root = places["root"] / ("archive/files" if name == "archive" else "folder")
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in root.rglob("*") if p.is_file()
            and not p.name.startswith(".")}


@pytest.mark.parametrize(("source", "destination"), list(itertools.permutations(PLACES, 2)),
                         ids=lambda name: name)
def test_copy_moves_the_same_instances_between_every_pair(places, capsys, source, destination):
    corpus = places["studies"][source]
    study = corpus[0].study_uid
    code, out, err = cli(capsys, "copy", places["addresses"][source], places["addresses"][destination],
                         "--study-uid", study, "-f", "json")
    assert code == 0, err
    import json

    summary = json.loads(out)
    assert summary["planned"] == len(corpus)
    assert summary["failed"] == []
    if frozenset({source, destination}) in SAME_STORE:
        assert summary["copied"] == 0 and summary["present"] == len(corpus)
    else:
        assert summary["copied"] + summary["present"] == len(corpus)
    got = held(places, destination, study)
    assert set(got) == {c.sop_instance_uid for c in corpus}
    for item in corpus:
        original = dcmread(item.path)
        copied = got[item.sop_instance_uid]
        assert copied.PixelData == original.PixelData
        for keyword in ATTRIBUTES:
            assert copied.get(keyword) == original.get(keyword), keyword
    if destination == "serve":
        stored = {str(dcmread(p).SOPInstanceUID): dcmread(p)
                  for p in (places["root"] / "serve" / "archive" / "files").rglob("*") if p.is_file()}
        for item in corpus:
            assert stored[item.sop_instance_uid].PatientName == dcmread(item.path).PatientName
    if destination in CLIENT_SIDE:
        stored = files_of(places, destination)
        for item in corpus:
            on_disk = dcmread(stored[item.sop_instance_uid])
            assert dcmread(item.path).PatientName, "the corpus must carry names for this to mean anything"
            for keyword in PATIENT_NAME_KEYWORDS:
                assert not on_disk.get(keyword), keyword


def test_a_second_copy_sends_nothing_and_dry_run_lists_what_would_go(places, capsys, tmp_path):
    corpus = places["studies"]["dcmqrscp"]
    study = corpus[0].study_uid
    code, out, _ = cli(capsys, "copy", places["addresses"]["dcmqrscp"], tmp_path / "dry", "--study-uid", study,
                       "--dry-run")
    assert code == 0
    assert set(out.split()) >= {c.sop_instance_uid for c in corpus}
    assert f"Would copy {len(corpus)} instances" in out
    assert not (tmp_path / "dry").exists() or not any((tmp_path / "dry").rglob("*.dcm"))
    cli(capsys, "copy", places["addresses"]["dcmqrscp"], tmp_path / "again", "--study-uid", study)
    code, out, _ = cli(capsys, "copy", places["addresses"]["dcmqrscp"], tmp_path / "again", "--study-uid", study)
    assert code == 0
    assert "Copied 0 instances" in out and f"{len(corpus)} already there" in out


def test_a_copy_that_stopped_is_completed_by_a_second_run(places, capsys, tmp_path):
    corpus = places["studies"]["serve"]
    study, first = corpus[0].study_uid, corpus[0]
    Client(Settings.load()).copy(places["addresses"]["serve"],
                                 Query.build(Level.IMAGE, study_uid=study, series_uid=first.series_uid,
                                             sop_instance_uid=first.sop_instance_uid), tmp_path / "out")
    code, out, _ = cli(capsys, "copy", places["addresses"]["serve"], tmp_path / "out", "--study-uid", study)
    assert code == 0
    assert f"Copied {len(corpus) - 1} instances" in out and "1 already there" in out


def test_from_equal_to_to_is_refused(places, capsys):
    code, _, err = cli(capsys, "copy", places["addresses"]["dcmqrscp"], places["addresses"]["dcmqrscp"])
    assert code == 2
    assert "same place" in err and "Traceback" not in err


def test_non_dicom_files_in_a_source_folder_are_skipped_and_counted(places, capsys, tmp_path):
    source = tmp_path / "mixed"
    items = _study(source, 61)
    (source / "notes.txt").write_text("not DICOM")
    (source / "empty.dcm").write_bytes(b"")
    code, out, err = cli(capsys, "copy", source, tmp_path / "out", "-l", "patient", "-p", items[0].patient_id)
    assert code == 0, err
    assert f"Copied {len(items)} instances" in out and "2 non-DICOM files skipped" in out


def test_a_destination_refusing_some_instances_reports_each_and_takes_the_rest(places, capsys, tmp_path,
                                                                             monkeypatch):
    """An archive that holds one of the study's series under another study refuses that
    series' instances (PS3.4 C.6.1.1.3: a series belongs to one study); the other series goes in."""
    corpus = places["studies"]["folder"]
    refused = [c for c in corpus if c.series_uid == corpus[0].series_uid]
    clash = dcmread(corpus[0].path)
    clash.StudyInstanceUID = "1.2.3.4.5"
    clash.SOPInstanceUID = "1.2.3.4.5.6"
    clash.file_meta.MediaStorageSOPInstanceUID = clash.SOPInstanceUID
    (tmp_path / "clash").mkdir()
    clash.save_as(tmp_path / "clash" / "clash.dcm", enforce_file_format=True)
    monkeypatch.setenv("PACSKIT_ARCHIVE__DATA_DIR", str(tmp_path / "refusing"))
    assert cli(capsys, "copy", tmp_path / "clash", "archive", "--study-uid", "1.2.3.4.5")[0] == 0
    code, out, err = cli(capsys, "copy", places["addresses"]["folder"], "archive", "--study-uid", corpus[0].study_uid)
    assert code == 26, err
    assert f"Copied {len(corpus) - len(refused)} instances" in out
    for item in refused:
        assert f"not copied: {item.sop_instance_uid}: " in err
    assert "another study" in err


def test_a_retrieve_forwarded_to_storescp_arrives_on_one_association(places, tmp_path):
    corpus = places["studies"]["dcmqrscp"]
    storescp = StoreSCP(tmp_path / "storescp")
    storescp.extra_args = ["-v"]
    with storescp:
        client = Client(Settings.load())
        result = client.get_study(places["addresses"]["dcmqrscp"], corpus[0].study_uid,
                                  forward_to=storescp.address)
        assert result.written == len(corpus), result
        received = {str(dcmread(p).SOPInstanceUID) for p in storescp.received()}
        assert received == {c.sop_instance_uid for c in corpus}
        storing = [a for a in storescp.log().split("Association Received")[1:] if "Store Request" in a]
        assert len(storing) == 1, storescp.log()


def test_get_forward_to_sends_each_instance_on_from_the_command_line(places, tmp_path):
    from clirunner import run_cli

    corpus = places["studies"]["orthanc-web"]
    storescp = StoreSCP(tmp_path / "storescp")
    (tmp_path / "cwd").mkdir()
    with storescp:
        result = run_cli("get", places["addresses"]["orthanc-web"], "--study-uid", corpus[0].study_uid,
                         "--forward-to", storescp.address, cwd=tmp_path / "cwd")
        assert result.returncode == 0, result.stderr
        assert f"{len(corpus)} sent on to {storescp.address}" in result.stdout
        received = {str(dcmread(p).SOPInstanceUID) for p in storescp.received()}
    assert received == {c.sop_instance_uid for c in corpus}
    assert not list((tmp_path / "cwd").rglob("*"))


@pytest.mark.parametrize("where", [[], ["-o", "out", "--forward-to", "dicom://X@127.0.0.1:9"]])
def test_get_wants_exactly_one_of_a_folder_and_a_node_to_forward_to(places, tmp_path, where):
    from clirunner import assert_one_line_error, run_cli

    result = run_cli("get", places["addresses"]["dcmqrscp"], "--study-uid", "1.2.3", *where, cwd=tmp_path)
    assert_one_line_error(result, 2, "give a folder to write into (-o DIR) or a node to send on to")
    assert not (tmp_path / "out").exists()


def test_a_node_configured_to_deidentify_is_planned_from_the_uids_it_holds(places, tmp_path):
    """Its search answers are de-identified for a user's find, but a retrieve that has to
    search first (here for the series of a modality) must ask for the UIDs the node holds."""
    from clirunner import run_cli

    corpus = places["studies"]["dcmqrscp"]
    peer = places["addresses"]["dcmqrscp"].removeprefix("dicom://")
    ae, _, rest = peer.partition("@")
    host, _, port = rest.rpartition(":")
    (tmp_path / "pacskit.toml").write_text(
        f'[deidentify]\nsecret = "a secret of the test"\n\n'
        f'[nodes.research]\nae_title = "{ae}"\nhost = "{host}"\nport = {port}\ndeidentify = true\n')
    for command in (["get", "research", "-o", "got"], ["copy", "research", "copied"]):
        result = run_cli(*command, "-l", "series", "--study-uid", corpus[0].study_uid,
                         "--modality", corpus[0].modality, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        written = [dcmread(p) for p in (tmp_path / command[-1]).rglob("*.dcm")]
        wanted = [c for c in corpus if c.modality == corpus[0].modality]
        assert len(written) == len(wanted)
        assert all(w.PatientIdentityRemoved == "YES" for w in written)
        assert not {str(w.SOPInstanceUID) for w in written} & {c.sop_instance_uid for c in corpus}


def test_copy_as_a_user_runs_it(places, tmp_path):
    from clirunner import run_cli

    corpus = places["studies"]["orthanc-web"]
    result = run_cli("copy", places["addresses"]["orthanc-web"], tmp_path / "out", "--study-uid",
                     corpus[0].study_uid)
    assert result.returncode == 0, result.stderr
    assert f"Copied {len(corpus)} instances" in result.stdout
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == len(corpus)


def test_a_copy_into_memory_keeps_the_datasets_without_names(places):
    corpus = places["studies"]["orthanc-dimse"]
    result = Client(Settings.load()).copy(places["addresses"]["orthanc-dimse"],
                                          Query.build(Level.STUDY, study_uid=corpus[0].study_uid))
    assert result.destination == "memory"
    assert {str(ds.SOPInstanceUID) for ds in result.instances} == {c.sop_instance_uid for c in corpus}
    assert all(not ds.get("PatientName") for ds in result.instances)


def test_transient_failures_are_tried_again(places, tmp_path):
    from proxy import RecordingProxy

    proxy = RecordingProxy("127.0.0.1", places["serve"].settings.port, drop_first=2)
    try:
        corpus = places["studies"]["serve"]
        client = Client(Settings.load().model_copy(update={"retry_backoff": 0.05}))
        result = client.copy(f"dicom://ARCHIVE@127.0.0.1:{proxy.port}",
                             Query.build(Level.STUDY, study_uid=corpus[0].study_uid), tmp_path / "out", retries=2)
        assert (result.copied, result.failed, proxy.connections >= 3) == (len(corpus), [], True)
    finally:
        proxy.close()


def test_a_cancelled_copy_keeps_whole_files_and_a_second_run_completes_it(places, tmp_path):
    from pacskit.cancellation import Cancellation

    corpus = places["studies"]["dcmqrscp"]
    query = Query.build(Level.STUDY, study_uid=corpus[0].study_uid)
    cancellation = Cancellation()
    client = Client(Settings.load())
    first = client.copy(places["addresses"]["dcmqrscp"], query, tmp_path / "out", cancellation=cancellation,
                        progress=lambda p: cancellation.cancel())
    assert first.cancelled and first.copied == 1 and first.failed == []
    assert not [p for p in (tmp_path / "out").rglob(".*") if p.is_file()], "a half-written file is left"
    second = client.copy(places["addresses"]["dcmqrscp"], query, tmp_path / "out")
    assert (second.present, second.copied) == (1, len(corpus) - 1)


def test_de_identification_without_a_secret_writes_nothing(places, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("PACSKIT_DEID__SECRET", raising=False)
    corpus = places["studies"]["folder"]
    code, _, err = cli(capsys, "copy", places["addresses"]["folder"], tmp_path / "out", "--study-uid",
                       corpus[0].study_uid, "--deidentify")
    assert code == 8, err
    assert not (tmp_path / "out").exists()


def test_a_source_lost_midway_leaves_whole_files_and_a_second_run_completes_the_copy(places, tmp_path):
    from proxy import RecordingProxy

    from pacskit.errors import NetworkError

    corpus = places["studies"]["serve"]
    query = Query.build(Level.STUDY, study_uid=corpus[0].study_uid)
    client = Client(Settings.load())
    proxy = RecordingProxy("127.0.0.1", places["serve"].settings.port, cut_after_received=20000)
    try:
        with pytest.raises(NetworkError):
            client.copy(f"dicom://ARCHIVE@127.0.0.1:{proxy.port}", query, tmp_path / "out")
    finally:
        proxy.close()
    arrived = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(arrived) < len(corpus)
    assert all(p.suffix == ".dcm" for p in arrived), "a half-written file is left"
    for path in arrived:
        assert dcmread(path).PixelData == dcmread(next(c.path for c in corpus if c.sop_instance_uid == path.stem)).PixelData
    second = client.copy(places["addresses"]["serve"], query, tmp_path / "out").raise_for_status()
    assert (second.present, second.copied) == (len(arrived), len(corpus) - len(arrived))


def test_an_async_copy_awaits_the_same_path(places, tmp_path):
    import asyncio

    from pacskit import AsyncClient

    corpus = places["studies"]["orthanc-web"]
    query = Query.build(Level.STUDY, study_uid=corpus[0].study_uid)
    result = asyncio.run(AsyncClient(Settings.load()).copy(places["addresses"]["orthanc-web"], query, tmp_path / "out"))
    assert (result.copied, result.failed) == (len(corpus), [])


def test_a_copy_by_c_move_to_ourselves_and_its_forward_mode(places, moving_dcmqrscp, our_port, corpus, tmp_path):
    study = corpus[0].study_uid
    items = {c.sop_instance_uid for c in corpus if c.study_uid == study}
    client = Client(Settings.load().model_copy(update={"port": our_port}))
    copied = client.copy(moving_dcmqrscp.address, Query.build(Level.STUDY, study_uid=study), tmp_path / "out",
                         method="move").raise_for_status()
    assert copied.copied == len(items)
    assert {p.stem for p in (tmp_path / "out").rglob("*.dcm")} == items
    storescp = StoreSCP(tmp_path / "storescp")
    storescp.extra_args = ["-v"]
    with storescp:
        forwarded = client.get_study(moving_dcmqrscp.address, study, method="move", forward_to=storescp.address)
        assert forwarded.raise_for_status().written == len(items)
        assert {str(dcmread(p).SOPInstanceUID) for p in storescp.received()} == items
        storing = [a for a in storescp.log().split("Association Received")[1:] if "Store Request" in a]
        assert len(storing) == 1, storescp.log()


def test_a_dry_run_into_an_archive_that_does_not_exist_creates_nothing(places, capsys, tmp_path, monkeypatch):
    corpus = places["studies"]["folder"]
    monkeypatch.setenv("PACSKIT_ARCHIVE__DATA_DIR", str(tmp_path / "new-archive"))
    code, out, err = cli(capsys, "copy", places["addresses"]["folder"], "archive", "--study-uid",
                         corpus[0].study_uid, "--dry-run")
    assert code == 0, err
    assert set(out.split()) >= {c.sop_instance_uid for c in corpus}
    assert f"Would copy {len(corpus)} instances" in out
    assert not (tmp_path / "new-archive").exists()
    code, out, err = cli(capsys, "copy", places["addresses"]["folder"], "archive", "--study-uid", corpus[0].study_uid)
    assert code == 0, err
    code, out, _ = cli(capsys, "copy", places["addresses"]["folder"], "archive", "--study-uid", corpus[0].study_uid,
                       "--dry-run")
    assert code == 0 and "Would copy 0 instances" in out and f"{len(corpus)} already there" in out


def test_a_copy_to_a_node_sends_the_bytes_it_holds_without_a_scratch_file(places, tmp_path, monkeypatch):
    """Into a fresh `pacskit serve`: what arrives is what dcmqrscp sent, and nothing is
    written in the temporary folder while the instances go (each progress report looks)."""
    import tempfile

    corpus = places["studies"]["dcmqrscp"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    seen: list[str] = []
    with served_archive(tmp_path / "serve", [], nodes=CLIENT_NODES) as serve:
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))
        result = Client(Settings.load()).copy(
            places["addresses"]["dcmqrscp"], Query.build(Level.STUDY, study_uid=corpus[0].study_uid),
            f"dicom://ARCHIVE@127.0.0.1:{serve.settings.port}",
            progress=lambda p: seen.extend(str(f) for f in scratch.rglob("*") if f.is_file()))
        monkeypatch.undo()
        assert (result.copied, result.failed) == (len(corpus), [])
        stored = {str(dcmread(p).SOPInstanceUID): dcmread(p)
                  for p in (tmp_path / "serve" / "archive" / "files").rglob("*") if p.is_file()}
    assert seen == []
    assert set(stored) == {c.sop_instance_uid for c in corpus}
    for item in corpus:
        assert stored[item.sop_instance_uid].PixelData == dcmread(item.path).PixelData


def test_a_copy_from_a_dicomweb_server_by_wado_uri(places, capsys, tmp_path):
    """Orthanc read through a recording proxy: every instance comes by a WADO-URI request
    (PS3.18 9), none by WADO-RS; the files are those Orthanc holds, names withheld."""
    from urllib.parse import urlsplit

    from proxy import RecordingProxy

    corpus = places["studies"]["orthanc-web"]
    url = urlsplit(places["addresses"]["orthanc-web"])
    proxy = RecordingProxy("127.0.0.1", url.port)
    try:
        code, out, err = cli(capsys, "copy", f"http://127.0.0.1:{proxy.port}{url.path}", tmp_path / "out",
                             "--study-uid", corpus[0].study_uid, "--wado-uri")
        sent = bytes(proxy.sent)
    finally:
        proxy.close()
    assert code == 0, err
    assert f"Copied {len(corpus)} instances" in out
    assert sent.count(b"GET /wado?requestType=WADO") == len(corpus)
    assert b"/instances/" not in sent and b"/series/" not in sent.replace(b"/series?", b"")
    written = {str(dcmread(p).SOPInstanceUID): dcmread(p) for p in (tmp_path / "out").rglob("*.dcm")}
    assert set(written) == {c.sop_instance_uid for c in corpus}
    for item in corpus:
        assert written[item.sop_instance_uid].PixelData == dcmread(item.path).PixelData
        assert not written[item.sop_instance_uid].get("PatientName")


def test_an_async_copy_by_wado_uri_and_de_identified(places, tmp_path, monkeypatch):
    """``AsyncClient.copy`` takes ``wado_uri`` and ``deidentify`` as ``Client.copy`` does:
    every instance by WADO-URI, each written de-identified."""
    import asyncio
    from urllib.parse import urlsplit

    from proxy import RecordingProxy

    from pacskit import AsyncClient

    monkeypatch.setenv("PACSKIT_DEIDENTIFY__SECRET", "a secret of the test")
    corpus = places["studies"]["orthanc-web"]
    url = urlsplit(places["addresses"]["orthanc-web"])
    proxy = RecordingProxy("127.0.0.1", url.port)
    try:
        client = AsyncClient(Settings.load())
        result = asyncio.run(client.copy(f"http://127.0.0.1:{proxy.port}{url.path}",
                                         Query(level=Level.STUDY, match={"StudyInstanceUID": corpus[0].study_uid}),
                                         tmp_path / "out", wado_uri=True, deidentify=True))
        sent = bytes(proxy.sent)
    finally:
        proxy.close()
    assert result.raise_for_status().copied == len(corpus)
    assert sent.count(b"GET /wado?requestType=WADO") == len(corpus) and b"/instances/" not in sent
    written = [dcmread(p) for p in (tmp_path / "out").rglob("*.dcm")]
    assert len(written) == len(corpus) and all(w.PatientIdentityRemoved == "YES" for w in written)
    assert not {str(w.SOPInstanceUID) for w in written} & {c.sop_instance_uid for c in corpus}


def test_wado_uri_from_a_source_that_is_not_dicomweb_is_a_usage_error(places, capsys, tmp_path):
    code, _, err = cli(capsys, "copy", places["addresses"]["dcmqrscp"], tmp_path / "out", "--wado-uri")
    assert code == 2, err
    assert "--wado-uri" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_archive_import_keeps_names_and_copy_into_the_archive_withholds_them(places, capsys, tmp_path, monkeypatch):
    """One archive sink, two names policies: `archive import` stores the files as they
    carry their names, `copy FOLDER archive` blanks them; both index the same instances,
    and both refuse an instance that contradicts the archive (its series under another study)."""
    corpus = _study(tmp_path / "named", 71)
    source = tmp_path / "named"
    clash = dcmread(corpus[0].path)
    clash.StudyInstanceUID, clash.SOPInstanceUID = "1.2.3.4.5", "1.2.3.4.5.7"
    clash.file_meta.MediaStorageSOPInstanceUID = clash.SOPInstanceUID
    (tmp_path / "clash").mkdir()
    clash.save_as(tmp_path / "clash" / "clash.dcm", enforce_file_format=True)
    stored = {}
    for route in ("import", "copy"):
        data = tmp_path / route
        monkeypatch.setenv("PACSKIT_ARCHIVE__DATA_DIR", str(data))
        args = ["archive", "import", source] if route == "import" else ["copy", source, "archive", "-l", "patient",
                                                                         "-p", corpus[0].patient_id]
        code, out, err = cli(capsys, *args)
        assert code == 0, err
        code, out, err = cli(capsys, *(["archive", "import", tmp_path / "clash"] if route == "import" else
                                       ["copy", tmp_path / "clash", "archive", "--study-uid", "1.2.3.4.5"]))
        assert code == (26 if route == "import" else 25), err
        assert "another study" in err
        stored[route] = {str(dcmread(p).SOPInstanceUID): dcmread(p) for p in (data / "files").rglob("*")
                         if p.is_file()}
    assert set(stored["import"]) == set(stored["copy"]) == {c.sop_instance_uid for c in corpus}
    for item in corpus:
        original = dcmread(item.path)
        assert original.PatientName, "the corpus must carry names for this to mean anything"
        assert stored["import"][item.sop_instance_uid].PatientName == original.PatientName
        assert stored["import"][item.sop_instance_uid].PixelData == original.PixelData
        for keyword in PATIENT_NAME_KEYWORDS:
            assert not stored["copy"][item.sop_instance_uid].get(keyword), keyword
        assert stored["copy"][item.sop_instance_uid].PixelData == original.PixelData
