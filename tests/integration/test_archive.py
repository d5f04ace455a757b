"""`pacskit serve` as a PACS for DCMTK's tools, Orthanc and pacskit itself, on SQLite and
on PostgreSQL: what goes in comes back out byte for byte, queries follow the rules, and
the access table and bad data are handled as a PACS must."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from clirunner import assert_one_line_error, run_cli
from postgres import fresh_database
from proxy import RecordingProxy
from pydicom import dcmread
from pydicom.uid import generate_uid
from pynetdicom import build_context
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from pacskit import Client, Node, Settings
from pacskit.archive import Archive, Index
from pacskit.errors import DimseFailure
from pacskit.net.association import associate
from pacskit.net.commands import STATUS, c_cancel_rq, c_find_rq, c_store_rq
from pacskit.query import Query
from pacskit.scan import read_file
from pacskit.settings import ArchiveSettings, NodeConfig, WebSettings
from pacskit.testing.peers import free_port, peer_env, require, storescu
from pacskit.testing.samples import pydicom_samples

ARCHIVE_AET = "ARCHIVE"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """An empty index database of each kind."""
    if request.param == "sqlite":
        yield ""
        return
    with fresh_database() as url:
        yield url


def archive_settings(tmp_path: Path, db: str, **nodes: NodeConfig) -> Settings:
    known = {
        "pacskit": NodeConfig(ae_title="PACSKIT", host="127.0.0.1", port=free_port()),
        "dcmtk": NodeConfig(ae_title="DCMTK", host="127.0.0.1", port=free_port()),
        **nodes,
    }
    return Settings(ae_title=ARCHIVE_AET, port=free_port(), bind_address="127.0.0.1", nodes=known,
                    archive=ArchiveSettings(data_dir=tmp_path / "archive", db=db),
                    web=WebSettings(enabled=False))


@pytest.fixture
def archive(tmp_path, database, storescp):
    settings = archive_settings(tmp_path, database, store=NodeConfig(
        ae_title=storescp.ae_title, host=storescp.host, port=storescp.port, allow=["echo"]))
    with Archive(settings) as running:
        running.start()
        yield running


def node_of(archive: Archive) -> Node:
    return Node(ae_title=ARCHIVE_AET, host="127.0.0.1", port=archive.settings.port)


def dcmtk(tool: str, archive: Archive, *args: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([require(tool), "-aet", "DCMTK", "-aec", ARCHIVE_AET, *map(str, args),
                             "127.0.0.1", str(archive.settings.port)],
                            capture_output=True, text=True, env=peer_env(), timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def dataset_bytes(path: Path) -> bytes:
    return path.read_bytes()[read_file(path).dataset_offset:]


def test_store_find_get_move_with_dcmtk(archive, corpus, corpus_dir, storescp, tmp_path):
    storescu(ARCHIVE_AET, "127.0.0.1", archive.settings.port, [corpus_dir], calling="DCMTK")
    assert archive.index.count() == len(corpus)

    found = dcmtk("findscu", archive, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
                  "-k", "NumberOfStudyRelatedInstances")
    assert found.stderr.count("(0020,000d)") == len({c.study_uid for c in corpus})

    study = sorted({c.study_uid for c in corpus})[0]
    items = [c for c in corpus if c.study_uid == study]
    (tmp_path / "got").mkdir()
    dcmtk("getscu", archive, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
          "-od", tmp_path / "got")
    got = sorted((tmp_path / "got").iterdir())
    assert len(got) == len(items)
    originals = {c.sop_instance_uid: c.path for c in items}
    for path in got:
        assert dataset_bytes(path) == dataset_bytes(originals[read_file(path).sop_instance_uid])

    patient = sorted({c.patient_id for c in corpus})[1]
    dcmtk("movescu", archive, "-P", "-aem", storescp.ae_title, "-k", "QueryRetrieveLevel=PATIENT",
          "-k", f"PatientID={patient}")
    moved = {read_file(p).sop_instance_uid: p for p in storescp.received()}
    expected = {c.sop_instance_uid: c.path for c in corpus if c.patient_id == patient}
    assert set(moved) == set(expected)
    assert all(dataset_bytes(moved[u]) == dataset_bytes(expected[u]) for u in expected)


def test_pydicom_samples_come_back_byte_identical(archive, storescp):
    """Compressed, deflated, big endian, RT, SR, waveforms, character sets: stored as they
    came, moved on as they are."""
    samples = pydicom_samples()
    client = Client(Settings(ae_title="PACSKIT"))
    assert client.store(samples, node_of(archive)).raise_for_status().converted == 0
    assert archive.index.count() == len(samples)
    studies = sorted({str(dcmread(p, stop_before_pixels=True).StudyInstanceUID) for p in samples})
    moved = client.move(node_of(archive), Query.build("study", study_uid="\\".join(studies)), storescp.ae_title)
    assert moved.completed == len(samples)
    received = {read_file(p).sop_instance_uid: p for p in storescp.received()}
    for path in samples:
        got = received[read_file(path).sop_instance_uid]
        assert read_file(got).transfer_syntax == read_file(path).transfer_syntax, path.name
        sent = dataset_bytes(path)
        assert dataset_bytes(got) == (sent + b"\0" if len(sent) % 2 else sent), path.name


def test_pacskit_finds_at_every_level_and_retrieves(archive, corpus, corpus_dir, tmp_path):
    client = Client(Settings(ae_title="PACSKIT"))
    assert client.store([corpus_dir], node_of(archive)).raise_for_status().sent == len(corpus)
    node = node_of(archive)
    assert len(client.find(node, Query.build("patient"))) == len({c.patient_id for c in corpus})
    assert len(client.find(node, Query.build("study"))) == len({c.study_uid for c in corpus})
    assert len(client.find(node, Query.build("series"))) == len({c.series_uid for c in corpus})
    series = sorted({c.series_uid for c in corpus})[0]
    images = client.find(node, Query.build("image", series_uid=series))
    assert {d.SOPInstanceUID for d in images} == {c.sop_instance_uid for c in corpus if c.series_uid == series}
    assert not any(d.get("PatientName") for d in client.find(node, Query.build("study")))
    mr = client.find(node, Query.build("study", modality="MR"))
    assert {d.StudyInstanceUID for d in mr} == {c.study_uid for c in corpus if c.modality == "MR"}

    study = sorted({c.study_uid for c in corpus})[1]
    result = client.get_study(node, study, tmp_path / "out").raise_for_status()
    assert result.written == len([c for c in corpus if c.study_uid == study])
    for path in result.files:
        original = dcmread(next(c.path for c in corpus if c.sop_instance_uid == path.stem))
        assert dcmread(path).PixelData == original.PixelData


def test_find_answers_the_same_through_the_network(archive, corpus_dir):
    storescu(ARCHIVE_AET, "127.0.0.1", archive.settings.port, [corpus_dir], calling="DCMTK")
    result = run_cli("--aet", "PACSKIT", "find", f"dicom://{ARCHIVE_AET}@127.0.0.1:{archive.settings.port}",
                     "--date", "20000101-", "--description", "*", "-f", "dicom-json")
    assert result.returncode == 0, result.stderr
    over_network = {d["0020000D"]["Value"][0] for d in json.loads(result.stdout)}
    local = {d.StudyInstanceUID for d in archive.index.find(Query.build("study", date="20000101-"))}
    assert over_network == local and local


def test_everything_is_still_there_after_a_restart(tmp_path, database, corpus, corpus_dir):
    settings = archive_settings(tmp_path, database)
    with Archive(settings) as first:
        first.start()
        storescu(ARCHIVE_AET, "127.0.0.1", settings.port, [corpus_dir], calling="DCMTK")
    with Archive(settings) as second:
        second.start()
        found = Client(Settings(ae_title="PACSKIT")).find(node_of(second), Query.build("image"))
        assert {d.SOPInstanceUID for d in found} == {c.sop_instance_uid for c in corpus}


def test_the_same_instance_twice_is_one_row(archive, corpus):
    client = Client(Settings(ae_title="PACSKIT"))
    for _ in range(2):
        client.store([corpus[0].path], node_of(archive)).raise_for_status()
    assert archive.index.count() == 1
    assert len(list((archive.ingest.files).rglob("*.dcm"))) == 1


def test_access_table(tmp_path, database, corpus, storescp):
    settings = archive_settings(tmp_path, database, store_only=NodeConfig(
        ae_title="STOREONLY", host="127.0.0.1", port=free_port(), allow=["echo", "store"]))
    with Archive(settings) as archive:
        archive.start()
        node = node_of(archive)
        Client(Settings(ae_title="STOREONLY")).store([corpus[0].path], node).raise_for_status()
        with pytest.raises(DimseFailure, match="0x0124"):
            Client(Settings(ae_title="STOREONLY")).find(node, Query.build("study"))
        with pytest.raises(DimseFailure, match="0x0124"):
            Client(Settings(ae_title="STRANGER")).find(node, Query.build("study"))
        assert Client(Settings(ae_title="STRANGER")).echo(node).status == 0
        with pytest.raises(DimseFailure, match="0x0124.*may not move"):
            Client(Settings(ae_title="STOREONLY")).move(
                node, Query.build("study", study_uid=corpus[0].study_uid), "PACSKIT")
        wrong = f"dicom://NOT_ARCHIVE@127.0.0.1:{settings.port}"
        assert_one_line_error(run_cli("echo", wrong), 14, "called AE title not recognised")


def test_move_to_an_unknown_destination_is_0xa801(archive, corpus):
    Client(Settings(ae_title="PACSKIT")).store([corpus[0].path], node_of(archive)).raise_for_status()
    result = run_cli("--aet", "PACSKIT", "move", f"dicom://{ARCHIVE_AET}@127.0.0.1:{archive.settings.port}",
                     "-p", corpus[0].patient_id, "--to", "NOWHERE")
    assert_one_line_error(result, 24, "0xA801")


def test_bad_data_is_refused_and_nothing_is_left(archive, corpus, tmp_path):
    escaping = dcmread(corpus[0].path)
    escaping.StudyInstanceUID = "../../escape"
    escaping.SOPInstanceUID = generate_uid()
    escaping.file_meta.MediaStorageSOPInstanceUID = escaping.SOPInstanceUID
    escaping.save_as(tmp_path / "escape.dcm")
    result = Client(Settings(ae_title="PACSKIT")).store([tmp_path / "escape.dcm"], node_of(archive))
    assert result.failed == 1 and "not a valid UID" in result.failures[0].reason
    assert mismatched_store(archive, corpus[1].path) == 0xA900
    assert archive.index.count() == 0
    root = archive.settings.archive.data_dir
    assert not [p for p in root.rglob("*") if p.is_file() and p.suffix in (".dcm", ".part")]
    assert not (tmp_path / "escape").exists()


def mismatched_store(archive: Archive, path: Path) -> int:
    """The status of a C-STORE whose request names another SOP class than its dataset."""
    item = read_file(path)
    other = "1.2.840.10008.5.1.4.1.1.4" if item.sop_class_uid != "1.2.840.10008.5.1.4.1.1.4" \
        else "1.2.840.10008.5.1.4.1.1.2"
    settings = Settings(ae_title="PACSKIT")
    with associate(settings, node_of(archive), [build_context(other, item.transfer_syntax)]) as channel:
        channel.send(next(iter(channel.contexts)), c_store_rq(1, other, item.sop_instance_uid),
                     dataset_bytes(path))
        return channel.receive().us(STATUS) or 0


def test_c_cancel_ends_a_find_and_the_association_goes_on(archive, corpus, corpus_dir):
    storescu(ARCHIVE_AET, "127.0.0.1", archive.settings.port, [corpus_dir], calling="DCMTK")
    find = StudyRootQueryRetrieveInformationModelFind
    identifier = encode(Query.build("image").to_identifier(), True, True)
    node = node_of(archive)
    with associate(Settings(ae_title="PACSKIT", dimse_timeout=10), node, [build_context(find)]) as channel:
        context = next(iter(channel.contexts))
        written: list[bytes] = []
        channel.transport.write = written.append  # the request and its C-CANCEL reach the SCP together
        channel.send(context, c_find_rq(7, find), identifier)
        channel.send(context, c_cancel_rq(7))
        del channel.transport.write
        channel.transport.write(b"".join(written))
        assert channel.receive().us(STATUS) == 0xFE00

        channel.send(context, c_find_rq(8, find), identifier)
        statuses = [channel.receive().us(STATUS)]
        while statuses[-1] == 0xFF00:
            statuses.append(channel.receive().us(STATUS))
        assert statuses == [0xFF00] * len(corpus) + [0x0000]


def test_an_association_lost_mid_dataset_leaves_nothing(archive, tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    from pacskit.testing.corpus import generate_corpus
    generate_corpus(big, patients=1, studies_per_patient=1, series_per_study=1,
                    instances_per_series=3, rows=256, columns=256, seed=3)
    proxy = RecordingProxy("127.0.0.1", archive.settings.port, cut_after=200_000)
    try:
        Client(Settings(ae_title="PACSKIT")).store([big], Node(ae_title=ARCHIVE_AET, host="127.0.0.1",
                                                               port=proxy.port))
    except Exception:  # noqa: BLE001 - the sender's view is another test's business
        pass
    finally:
        proxy.close()
    stored = archive.index.count()
    files = [p for p in archive.settings.archive.data_dir.rglob("*") if p.is_file()
             and p.name not in ("index.db", "index.db-wal", "index.db-shm")]
    assert stored == 1 and len(files) == 1, files


def test_orthanc_moves_into_pacskit_and_pacskit_moves_back(tmp_path, database, orthanc, corpus):
    settings = archive_settings(tmp_path, database, orthanc=NodeConfig(
        ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port))
    with Archive(settings) as archive:
        archive.start()
        orthanc.add_modality("archive", ARCHIVE_AET, "127.0.0.1", settings.port)
        study = sorted({c.study_uid for c in corpus})[2]
        items = {c.sop_instance_uid for c in corpus if c.study_uid == study}
        moved = Client(Settings(ae_title="PACSKIT")).move(
            Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port),
            Query.build("study", study_uid=study), ARCHIVE_AET)
        assert moved.completed == len(items)
        assert archive.index.count() == len(items)
        orthanc.clear()
        back = Client(Settings(ae_title="ORTHANC")).move(node_of(archive), Query.build("study", study_uid=study),
                                                         orthanc.ae_title)
        assert back.completed == len(items)
        assert orthanc.instance_count() == len(items)


def test_import_find_export_and_check(tmp_path, corpus, corpus_dir, orthanc):
    data = tmp_path / "data"
    imported = run_cli("archive", "import", corpus_dir, "--data-dir", data)
    assert imported.returncode == 0, imported.stderr
    assert f"Imported {len(corpus)} instances" in imported.stdout
    if orthanc.instance_count() != len(corpus):
        orthanc.clear()
        orthanc.load([corpus_dir])
    env = {"PACSKIT_ARCHIVE__DATA_DIR": str(data)}

    def studies(source: object, *options: object) -> set[str]:
        result = run_cli("find", source, *options, "-f", "dicom-json", env=env)
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        assert not any("00100010" in d and d["00100010"].get("Value") for d in found)
        return {d["0020000D"]["Value"][0] for d in found}

    for options in ((), ("--modality", "MR"), ("--date", "20220101-"), ("-p", corpus[0].patient_id)):
        in_archive = studies("archive", *options)
        assert in_archive == studies(corpus_dir, *options) == studies(orthanc.address, *options), options
    assert studies("archive") == {c.study_uid for c in corpus}

    study = corpus[0].study_uid
    exported = run_cli("archive", "export", "--study-uid", study, "-o", tmp_path / "out", "--data-dir", data)
    assert exported.returncode == 0, exported.stderr
    files = sorted((tmp_path / "out").rglob("*.dcm"))
    assert {p.stem for p in files} == {c.sop_instance_uid for c in corpus if c.study_uid == study}
    for path in files:
        got, original = dcmread(path), dcmread(next(c.path for c in corpus if c.sop_instance_uid == path.stem))
        assert got.PixelData == original.PixelData and not got.PatientName and original.PatientName

    stored = {read_file(p).sop_instance_uid: p for p in (data / "files").rglob("*.dcm")}
    stored[corpus[1].sop_instance_uid].unlink()
    stored[corpus[2].sop_instance_uid].unlink()
    shutil.copy(corpus[1].path, data / "files" / "stray.dcm")
    (data / "tmp" / "123-4-5.part").write_bytes(b"half an instance")
    found = run_cli("archive", "check", "--data-dir", data)
    assert found.returncode == 26, found.stderr
    assert "2 rows without a file, 1 files without a row, 1 temporary files found" in found.stdout
    repaired = run_cli("archive", "check", "--repair", "--data-dir", data)
    assert repaired.returncode == 0, repaired.stderr
    clean = run_cli("archive", "check", "--data-dir", data)
    assert clean.returncode == 0 and "0 rows without a file, 0 files without a row" in clean.stdout
    result = run_cli("find", "archive", "-l", "image", "-f", "dicom-json", env=env)
    found_uids = {d["00080018"]["Value"][0] for d in json.loads(result.stdout)}
    assert found_uids == {c.sop_instance_uid for c in corpus} - {corpus[2].sop_instance_uid}


def serve_process(data: Path, port: int, **popen: Any) -> subprocess.Popen[bytes]:
    """``pacskit serve`` in its own process, once it answers C-ECHO; its log goes to
    ``serve.log`` beside ``data`` (a pipe nobody reads would fill and stop it)."""
    log = (data.parent / "serve.log").open("ab")
    server = subprocess.Popen([sys.executable, "-m", "pacskit", "--aet", ARCHIVE_AET, "--port", str(port),
                               "serve", "--data-dir", str(data), "--no-http"], stderr=log, **popen)
    log.close()
    for _ in range(100):
        if subprocess.run([require("echoscu"), "-aec", ARCHIVE_AET, "127.0.0.1", str(port)],
                          capture_output=True, env=peer_env(), check=False).returncode == 0:
            return server
        time.sleep(0.1)
    server.kill()
    server.wait()
    raise AssertionError(f"pacskit serve did not start: {(data.parent / 'serve.log').read_text()[-2000:]!r}")


def test_a_write_that_fails_is_refused_and_the_server_goes_on(tmp_path, corpus):
    """A file larger than the process may write fails as on a full disk: 0xA700, nothing
    left behind, and the next (smaller) instance is stored."""
    from pacskit.testing.corpus import generate_corpus
    big = generate_corpus(tmp_path / "big", patients=1, studies_per_patient=1, series_per_study=1,
                          instances_per_series=1, rows=512, columns=512, seed=5)[0]
    data, port = tmp_path / "data", free_port()
    limit = 256 * 1024
    known = {"PACSKIT_NODES__ME__AE_TITLE": "PACSKIT", "PACSKIT_NODES__ME__HOST": "127.0.0.1",
             "PACSKIT_NODES__ME__PORT": str(free_port())}
    server = serve_process(data, port, env={**os.environ, **known}, preexec_fn=lambda: resource.setrlimit(
        resource.RLIMIT_FSIZE, (limit, limit)))
    try:
        node = Node(ae_title=ARCHIVE_AET, host="127.0.0.1", port=port)
        client = Client(Settings(ae_title="PACSKIT"))
        refused = client.store([big.path], node)
        assert refused.failed == 1 and "0xA700" in refused.failures[0].reason
        assert client.store([corpus[0].path], node).raise_for_status().sent == 1
        found = client.find(node, Query.build("image"))
        assert [d.SOPInstanceUID for d in found] == [corpus[0].sop_instance_uid]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not list((data / "tmp").iterdir())
    assert len(list((data / "files").rglob("*.dcm"))) == 1


def test_sigkill_while_receiving_loses_nothing_acknowledged(tmp_path):
    from pacskit.testing.corpus import generate_corpus
    source = tmp_path / "source"
    generate_corpus(source, patients=1, studies_per_patient=1, series_per_study=2,
                    instances_per_series=300, seed=9)
    data, port = tmp_path / "data", free_port()
    server = serve_process(data, port)
    try:
        sender = subprocess.Popen([require("storescu"), "-v", "-aec", ARCHIVE_AET, "+sd", "+r", "-nh",
                                   "127.0.0.1", str(port), str(source)], stderr=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, text=True, env=peer_env())
        time.sleep(1.0)
        server.send_signal(signal.SIGKILL)
        _, log = sender.communicate(timeout=60)
    finally:
        server.kill()
        server.wait()
    acknowledged, sending = set(), None
    for line in log.splitlines():
        if "Sending file:" in line:
            sending = line.split("Sending file:", 1)[1].strip()
        elif "Received Store Response (Success)" in line and sending:
            acknowledged.add(Path(sending).stem)
    assert 0 < len(acknowledged) < 600, "the kill must land mid-transfer for this test to mean anything"
    repaired = run_cli("archive", "check", "--repair", "--data-dir", data)
    assert repaired.returncode == 0, repaired.stderr
    index = Index.open(f"sqlite:///{data / 'index.db'}")
    try:
        indexed = {uid for uid, _ in index.all_paths()}
        assert acknowledged <= indexed
        assert all((data / "files" / path).is_file() for _, path in index.all_paths())
    finally:
        index.close()
    assert not list((data / "tmp").iterdir())
    assert len(list((data / "files").rglob("*.dcm"))) == len(indexed)
