"""`pacskit serve` keeps its files and its index in step whatever peers send and however
it stops: refused overwrites, concurrent duplicates, instances that contradict the study
they claim, invalid UIDs, a kill -9 mid-ingest, concurrent series of one study on
PostgreSQL, and encapsulated pixel data under a native transfer syntax (see
docs/archive-integrity.md)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import struct
import subprocess
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from clirunner import run_cli
from postgres import fresh_database
from pydicom import Dataset, dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import build_context
from pynetdicom.dsutils import encode
from test_archive import ARCHIVE_AET, archive_settings, node_of, serve_process

from pacskit import Client, Node, Settings
from pacskit.archive import Archive, Received
from pacskit.archive.index import Index
from pacskit.encoded import file_meta
from pacskit.net.association import associate
from pacskit.net.commands import ERROR_COMMENT, STATUS, c_store_rq
from pacskit.query import Query
from pacskit.settings import WebSettings
from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import free_port, peer_env, require

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SUCCESS, OUT_OF_RESOURCES, DOES_NOT_MATCH = 0x0000, 0xA700, 0xA900
INDEX_FILES = ("index.db", "index.db-wal", "index.db-shm")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request):
    if request.param == "sqlite":
        yield ""
    else:
        with fresh_database() as url:
            yield url


@contextmanager
def running(tmp_path: Path, db: str, **archive: object) -> Iterator[Archive]:
    settings = archive_settings(tmp_path, db)
    settings = settings.model_copy(update={"archive": settings.archive.model_copy(update=archive)})
    with Archive(settings) as served:
        served.start()
        yield served


@pytest.fixture
def archive(tmp_path, database):
    with running(tmp_path, database) as served:
        yield served


@pytest.fixture
def sqlite_archive(tmp_path):
    """For what is decided before the index is written."""
    with running(tmp_path, "") as served:
        yield served


def image(modality: str = "CT", **attributes: object) -> Dataset:
    """A small image with a whole hierarchy of its own; ``attributes`` override."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT if modality == "CT" else MR
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate = "20240102"
    ds.Modality = modality
    ds.StudyDescription = "first"
    ds.PatientID = "PAT-1"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    if "PixelData" not in ds:
        ds.PixelData = bytes(range(32))
    return ds


RAW_VALUES: dict[bytes, bytes] = {}
"""Placeholder UIDs → the bytes :func:`encoded` writes instead (pydicom would strip
or refuse some of them)."""


def encoded(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = encode(ds, syntax == ImplicitVRLittleEndian, True)
    for placeholder, value in RAW_VALUES.items():
        data = data.replace(placeholder, value)
    return data


def with_raw_uid(ds: Dataset, keyword: str, value: str) -> Dataset:
    """``ds`` with a UI value encoded exactly as given (invalid ones included)."""
    digits = "".join(str(uuid.uuid4().int) for _ in range(3))
    placeholder = f"2.{digits}"[:len(value)]
    RAW_VALUES[placeholder.encode()] = value.encode("latin-1")
    setattr(ds, keyword, placeholder)
    return ds


class Store:
    """One association with the archive, for raw C-STOREs."""

    def __init__(self, archive: Archive, stack: ExitStack, sop_class: str = CT,
                 syntax: str = ExplicitVRLittleEndian, calling: str = "PACSKIT") -> None:
        node = node_of(archive)
        self.channel = stack.enter_context(associate(Settings(ae_title=calling, dimse_timeout=60), node,
                                                     [build_context(sop_class, syntax)]))
        self.context = next(iter(self.channel.contexts))
        self.sop_class = sop_class
        self.message_id = 0

    def send(self, dataset: bytes, sop_instance: str) -> tuple[int, str]:
        """The status and Error Comment of a C-STORE of ``dataset``."""
        self.message_id += 1
        self.channel.send(self.context, c_store_rq(self.message_id, self.sop_class, sop_instance), dataset)
        response = self.channel.receive()
        return response.us(STATUS) or 0, response.text(ERROR_COMMENT)


def c_store(archive: Archive, ds: Dataset, *, sop_instance: str | None = None, sop_class: str = CT,
            syntax: str = ExplicitVRLittleEndian, data: bytes | None = None) -> tuple[int, str]:
    with ExitStack() as stack:
        store = Store(archive, stack, sop_class, syntax)
        uid = sop_instance if sop_instance is not None else str(ds.SOPInstanceUID)
        return store.send(data if data is not None else encoded(ds, syntax), uid)


def send_together(archive: Archive, items: list[tuple[bytes, str]], sop_class: str = CT) -> list[tuple[int, str]]:
    """Each (dataset, SOP Instance UID) on an association of its own, the C-STOREs
    started together (a barrier)."""
    with ExitStack() as stack:
        stores = [Store(archive, stack, sop_class) for _ in items]
        barrier = threading.Barrier(len(items))

        def send(index: int) -> tuple[int, str]:
            barrier.wait(30)
            return stores[index].send(*items[index])

        with ThreadPoolExecutor(len(items)) as pool:
            return list(pool.map(send, range(len(items))))


def stored_files(archive: Archive) -> list[str]:
    files = archive.ingest.files
    return sorted(p.relative_to(files).as_posix() for p in files.rglob("*") if p.is_file())


def rows(archive: Archive) -> dict[str, str]:
    return dict(archive.index.all_paths())


def scratch(archive: Archive) -> list[Path]:
    return sorted(archive.ingest.scratch.iterdir())


def assert_in_step(archive: Archive) -> None:
    """Every row has its file, every file its one row, nothing half-written."""
    indexed = rows(archive)
    assert sorted(indexed.values()) == stored_files(archive)
    assert not scratch(archive)
    for uid, path in indexed.items():
        assert str(dcmread(archive.ingest.files / path, stop_before_pixels=True).SOPInstanceUID) == uid


def images(archive: Archive, **match: str) -> list[Dataset]:
    return list(archive.index.find(Query(level="image", match={"PatientID": "", "StudyInstanceUID": "",
                                                               "SeriesInstanceUID": "", **match})))


# 1. A refused overwrite leaves the stored instance exactly as it was.

def refuse_rows_described(archive: Archive, marker: str) -> None:
    """Make the index database itself refuse every instance row whose attributes hold
    ``marker`` (a trigger): the index write of such an instance fails."""
    if archive.index.sqlite:
        statements = [f"CREATE TRIGGER refuse BEFORE INSERT ON instance WHEN NEW.attributes LIKE '%{marker}%' "
                      "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"]
    else:
        statements = [
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.attributes LIKE "
            f"'%%{marker}%%' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse BEFORE INSERT ON instance FOR EACH ROW EXECUTE FUNCTION refuse()"]
    with archive.index.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def test_a_refused_overwrite_leaves_the_stored_instance_as_it_was(tmp_path, database):
    with running(tmp_path, database, duplicates="overwrite") as archive:
        first = image(StudyDescription="first version")
        assert c_store(archive, first) == (SUCCESS, "")
        (path,) = stored_files(archive)
        before = (archive.ingest.files / path).read_bytes()

        refuse_rows_described(archive, "REFUSED")
        second = image(StudyDescription="second version", ImageType=["DERIVED", "REFUSED"], SOPInstanceUID=first.SOPInstanceUID,
                       StudyInstanceUID=first.StudyInstanceUID, SeriesInstanceUID=first.SeriesInstanceUID)
        status, _ = c_store(archive, second)
        assert status == OUT_OF_RESOURCES
        assert rows(archive) == {first.SOPInstanceUID: path}
        assert (archive.ingest.files / path).read_bytes() == before
        (found,) = archive.index.find(Query(level="study", match={"StudyInstanceUID": first.StudyInstanceUID,
                                                                  "StudyDescription": ""}))
        assert found.StudyDescription == "first version"
        assert_in_step(archive)

        third = image(StudyDescription="third version", SOPInstanceUID=first.SOPInstanceUID,
                      StudyInstanceUID=first.StudyInstanceUID, SeriesInstanceUID=first.SeriesInstanceUID)
        assert c_store(archive, third) == (SUCCESS, "")
        (path,) = rows(archive).values()
        assert dcmread(archive.ingest.files / path).StudyDescription == "third version"
        assert_in_step(archive)


# 2. Concurrent duplicates: one file, one row.

@pytest.mark.parametrize("policy", ["keep", "overwrite"])
def test_concurrent_duplicates_leave_one_file_and_one_row(tmp_path, database, policy):
    with running(tmp_path, database, duplicates=policy) as archive:
        sop = generate_uid()
        copies = [image(SOPInstanceUID=sop, StudyDescription=f"copy {n}") for n in range(12)]
        statuses = send_together(archive, [(encoded(ds), sop) for ds in copies])
        assert statuses == [(SUCCESS, "")] * 12
        assert list(rows(archive)) == [sop]
        assert len(stored_files(archive)) == 1
        assert_in_step(archive)
        (found,) = images(archive, SOPInstanceUID=sop)
        (path,) = rows(archive).values()
        assert dcmread(archive.ingest.files / path).StudyInstanceUID == found.StudyInstanceUID
        assert len(list(archive.index.find(Query(level="study", match={})))) == 1


# 3. An instance that contradicts the patient of its study, or the study of its series.

def test_an_instance_of_another_patient_is_refused_from_the_study(archive, caplog):
    victim = image(PatientID="VICTIM")
    assert c_store(archive, victim) == (SUCCESS, "")
    before = stored_files(archive)
    caplog.set_level(logging.WARNING, "pacskit.archive")

    same_series = image(PatientID="INTRUDER", StudyInstanceUID=victim.StudyInstanceUID,
                        SeriesInstanceUID=victim.SeriesInstanceUID)
    new_series = image(PatientID="INTRUDER", StudyInstanceUID=victim.StudyInstanceUID)
    other_issuer = image(PatientID="VICTIM", IssuerOfPatientID="ELSEWHERE",
                         StudyInstanceUID=victim.StudyInstanceUID)
    for intruder in (same_series, new_series, other_issuer):
        status, comment = c_store(archive, intruder)
        assert status == DOES_NOT_MATCH
        assert "belongs to another patient" in comment
        assert "VICTIM" not in comment
    moved_series = image(PatientID="VICTIM", SeriesInstanceUID=victim.SeriesInstanceUID)
    status, comment = c_store(archive, moved_series)
    assert (status, "belongs to another study" in comment) == (DOES_NOT_MATCH, True)

    assert [d.PatientID for d in images(archive, StudyInstanceUID=victim.StudyInstanceUID)] == ["VICTIM"]
    assert list(rows(archive)) == [victim.SOPInstanceUID]
    assert stored_files(archive) == before
    assert_in_step(archive)
    logged = [r.getMessage() for r in caplog.records if r.name == "pacskit.archive"]
    assert sum(f"refused {same_series.SOPInstanceUID}" in line and "INTRUDER" in line for line in logged) == 1
    assert any(moved_series.SOPInstanceUID in line and "another study" in line for line in logged)
    assert len(list(archive.index.find(Query(level="patient", model="patient", match={})))) == 1


def test_concurrent_first_instances_of_a_study_from_two_patients(tmp_path, database):
    """The first instances of a new study arrive together from two patients: the study
    is one patient's, the other's are refused; no orphan patient, series or file."""
    with running(tmp_path, database) as archive:
        for _ in range(3):
            study = generate_uid()
            sent = [image(PatientID=f"P{n % 2}", StudyInstanceUID=study) for n in range(8)]
            statuses = send_together(archive, [(encoded(ds), str(ds.SOPInstanceUID)) for ds in sent])
            stored = {str(ds.SOPInstanceUID) for ds, (status, _) in zip(sent, statuses, strict=True)
                      if status == SUCCESS}
            owners = {ds.PatientID for ds in sent if str(ds.SOPInstanceUID) in stored}
            assert len(owners) == 1 and len(stored) == 4
            assert all(status == DOES_NOT_MATCH for status, _ in statuses if status != SUCCESS)
            (found,) = archive.index.find(Query(level="study", match={"StudyInstanceUID": study, "PatientID": ""},
                                                return_keys=("NumberOfStudyRelatedSeries",
                                                             "NumberOfStudyRelatedInstances")))
            assert (found.PatientID, found.NumberOfStudyRelatedSeries, found.NumberOfStudyRelatedInstances) \
                == (owners.pop(), 4, 4)
        assert_in_step(archive)
        patients = list(archive.index.find(Query(level="patient", model="patient", match={},
                                                 return_keys=("NumberOfPatientRelatedStudies",))))
        assert sum(p.NumberOfPatientRelatedStudies for p in patients) == 3
        assert all(p.NumberOfPatientRelatedStudies for p in patients)


# 4. Invalid UIDs, on every way in.

LONG_UID = "1." + "2" * 69
INVALID_UIDS = {
    "control characters": "1.2.3.4\n\0",
    "70 digits": "1" * 70,
    "a leading zero": "01.2.3.4",
    "an empty component": "1.2..3",
    "a trailing dot": "1.2.3.",
    "over 64 characters": LONG_UID,
    "a letter": "1.2.3a",
    "a leading space": " 1.2.3",
}


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID"])
@pytest.mark.parametrize("name", INVALID_UIDS)
def test_an_invalid_uid_is_refused(sqlite_archive, keyword, name):
    archive = sqlite_archive
    value = INVALID_UIDS[name]
    ds = with_raw_uid(image(), keyword, value)
    sop_instance = value if keyword == "SOPInstanceUID" else str(ds.SOPInstanceUID)
    status, comment = c_store(archive, ds, sop_instance=sop_instance)
    assert status == DOES_NOT_MATCH, (status, comment)
    assert "not a valid UID" in comment
    assert not rows(archive) and not stored_files(archive) and not scratch(archive)


def test_an_invalid_affected_sop_instance_uid_is_refused(sqlite_archive):
    archive = sqlite_archive
    ds = image()
    status, comment = c_store(archive, ds, sop_instance=f"{ds.SOPInstanceUID}\n")
    assert (status, "not a valid UID" in comment) == (DOES_NOT_MATCH, True)
    assert not rows(archive) and not stored_files(archive) and not scratch(archive)


def test_a_uid_with_a_trailing_newline_cannot_replace_another_instance(archive):
    victim = image(PatientID="VICTIM")
    assert c_store(archive, victim) == (SUCCESS, "")
    (path,) = stored_files(archive)
    before = (archive.ingest.files / path).read_bytes()
    for padding in ("\n", "\n\0", "\r"):
        intruder = with_raw_uid(image(PatientID="VICTIM", StudyInstanceUID=victim.StudyInstanceUID,
                                      SeriesInstanceUID=victim.SeriesInstanceUID, StudyDescription="intruder"),
                                "SOPInstanceUID", f"{victim.SOPInstanceUID}{padding}")
        status, _ = c_store(archive, intruder, sop_instance=f"{victim.SOPInstanceUID}{padding}")
        assert status == DOES_NOT_MATCH
    assert rows(archive) == {victim.SOPInstanceUID: path}
    assert (archive.ingest.files / path).read_bytes() == before
    assert_in_step(archive)


def test_uid_padding_is_not_part_of_the_uid(sqlite_archive):
    """A trailing NUL or space is padding (PS3.5 6.2, 9.1): the canonical UID is indexed,
    names the file, and the same UID unpadded is the same instance."""
    archive = sqlite_archive
    ds = image()
    uid = "1.2.826.0.1.3680043.10.1234.7"
    for padded in (f"{uid}\0", f"{uid} "):
        with_raw_uid(ds, "SOPInstanceUID", padded)
        assert c_store(archive, ds, sop_instance=padded) == (SUCCESS, "")
    ds.SOPInstanceUID = uid
    assert c_store(archive, ds) == (SUCCESS, "")
    assert list(rows(archive)) == [uid]
    (path,) = stored_files(archive)
    assert path.endswith(f"/{uid}.dcm")


def part10(ds: Dataset, sop_instance: str | None = None) -> bytes:
    uid = sop_instance if sop_instance is not None else str(ds.SOPInstanceUID)
    return file_meta(str(ds.SOPClassUID), uid, ExplicitVRLittleEndian) + encoded(ds)


def test_stow_rs_refuses_invalid_uids_in_the_failed_sop_sequence(tmp_path):
    settings = archive_settings(tmp_path, "").model_copy(update={"web": WebSettings(port=free_port())})
    with Archive(settings) as archive:
        archive.start()
        good = image()
        bad_dataset = with_raw_uid(image(), "StudyInstanceUID", "1.2.3.4\n")
        bad_meta = image()
        parts = [part10(good), part10(bad_dataset), part10(bad_meta, f"{bad_meta.SOPInstanceUID}\n")]
        body = b"".join(b"--XyZ\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n" for p in parts)
        response = httpx.post(f"http://127.0.0.1:{settings.web.port}/dicom-web/studies", content=body + b"--XyZ--\r\n",
                              headers={"Content-Type": "multipart/related; type=application/dicom; boundary=XyZ"})
        assert response.status_code == 202, response.text
        result = json.loads(response.content)
        failed = result["00081198"]["Value"]
        assert [item["00081197"]["Value"] for item in failed] == [[DOES_NOT_MATCH], [DOES_NOT_MATCH]]
        assert [item["00081155"]["Value"][0].rstrip() for item in failed] == \
            [bad_dataset.SOPInstanceUID, bad_meta.SOPInstanceUID]
        assert list(rows(archive)) == [good.SOPInstanceUID]
        assert_in_step(archive)


def test_archive_import_reports_each_file_with_an_invalid_uid(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    good, bad = image(), with_raw_uid(image(), "SeriesInstanceUID", "01.2.3")
    (source / "good.dcm").write_bytes(part10(good))
    (source / "bad.dcm").write_bytes(part10(bad))
    result = run_cli("archive", "import", source, "--data-dir", tmp_path / "data")
    assert result.returncode == 26, result.stderr
    assert "Imported 1 " in result.stdout and "1 refused" in result.stdout
    (refused,) = [line for line in result.stderr.splitlines() if "refused:" in line]
    assert "bad.dcm" in refused and "Series Instance UID" in refused and "not a valid UID" in refused


def test_an_index_where_two_rows_share_a_file_is_repaired_on_opening(tmp_path, database):
    """An index written by pacskit before UIDs were checked may hold a row for
    ``UID\\n`` sharing the file of ``UID``; opening it drops that row and makes paths
    unique."""
    url = database or f"sqlite:///{tmp_path}/index.db"
    index = Index.open(url)
    victim = image(SOPInstanceUID="1.2.826.0.1.3680043.10.1234.42")
    index.add(victim, path="a/b/c.dcm", size=10, transfer_syntax=ExplicitVRLittleEndian)
    with index.engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX IF EXISTS ux_instance_path")
        conn.exec_driver_sql("UPDATE schema_version SET version = 1")
    intruder = image(PatientID=victim.PatientID, StudyInstanceUID=victim.StudyInstanceUID,
                     SeriesInstanceUID=victim.SeriesInstanceUID)
    intruder.SOPInstanceUID = "9.9.9"
    index.add(intruder, path="a/b/c.dcm", size=10, transfer_syntax=ExplicitVRLittleEndian)
    with index.engine.begin() as conn:
        newline = "char(10)" if index.sqlite else "chr(10)"
        conn.exec_driver_sql(f"UPDATE instance SET sop_uid = '{victim.SOPInstanceUID}' || {newline} "
                             "WHERE sop_uid = '9.9.9'")
    index.close()

    reopened = Index.open(url)
    try:
        assert dict(reopened.all_paths()) == {victim.SOPInstanceUID: "a/b/c.dcm"}
        with pytest.raises(Exception, match="(?i)unique"):
            other = image()
            reopened.add(other, path="a/b/c.dcm", size=1, transfer_syntax=ExplicitVRLittleEndian)
    finally:
        reopened.close()


# 5. Start-up after a crash.

def pdata(context_id: int, flags: int, payload: bytes) -> bytes:
    """One P-DATA-TF PDU (PS3.8 9.3.5) of one PDV."""
    pdv = struct.pack(">IBB", len(payload) + 2, context_id, flags) + payload
    return struct.pack(">BBI", 0x04, 0, len(pdv)) + pdv


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_start_up_after_kill_9_mid_ingest_repairs_what_was_in_flight(tmp_path):
    """kill -9 while DCMTK senders store, one instance is half received and one is
    written but not yet indexed (the test holds the index's write lock): the next start
    leaves index and files in step, without archive check."""
    data, port = tmp_path / "data", free_port()
    sources = []
    for n in range(3):
        sources.append(tmp_path / f"source{n}")
        generate_corpus(sources[-1], patients=1, studies_per_patient=1, series_per_study=2,
                        instances_per_series=60, seed=20 + n)
    server = serve_process(data, port)
    files, tmp = data / "files", data / "tmp"
    senders: list[subprocess.Popen[str]] = []
    with ExitStack() as stack:
        try:
            node_settings = Settings(ae_title="HALF")
            node = Node(ae_title=ARCHIVE_AET, host="127.0.0.1", port=port)
            half = image()
            channel = stack.enter_context(associate(node_settings, node, [build_context(CT, ExplicitVRLittleEndian)]))
            context = next(iter(channel.contexts))
            dataset = encoded(half)
            channel.transport.write(pdata(context, 0x03, c_store_rq(1, CT, str(half.SOPInstanceUID))))
            channel.transport.write(pdata(context, 0x00, dataset[:len(dataset) // 2]))
            wait_for(lambda: any(p.suffix == ".part" for p in tmp.iterdir()), "the half instance's file")

            senders = [subprocess.Popen([require("storescu"), "-v", "-aec", ARCHIVE_AET, "+sd", "+r", "-nh",
                                         "127.0.0.1", str(port), str(source)], stderr=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, text=True, env=peer_env())
                       for source in sources]
            wait_for(lambda: len(list(files.rglob("*.dcm"))) >= 20, "instances stored")
            lock = sqlite3.connect(data / "index.db", timeout=60, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            indexed = lock.execute("SELECT count(*) FROM instance").fetchone()[0]
            wait_for(lambda: len(list(files.rglob("*.dcm"))) > indexed, "a file written but not indexed")
            server.send_signal(signal.SIGKILL)
            server.wait(30)
            lock.rollback()
            lock.close()
        finally:
            server.kill()
            server.wait()
        logs = [sender.communicate(timeout=120)[1] for sender in senders]
    assert any(p.suffix == ".part" for p in tmp.iterdir())
    assert len(list(files.rglob("*.dcm"))) > indexed

    serve_log = data.parent / "serve.log"
    before = serve_log.stat().st_size
    restarted = serve_process(data, port)
    restarted.terminate()
    restarted.wait(timeout=60)
    log = serve_log.read_bytes()[before:]

    acknowledged = set()
    for sender_log in logs:
        sending = None
        for line in sender_log.splitlines():
            if "Sending file:" in line:
                sending = line.split("Sending file:", 1)[1].strip()
            elif "Received Store Response (Success)" in line and sending:
                acknowledged.add(Path(sending).stem)
    index = Index.open(f"sqlite:///{data / 'index.db'}")
    try:
        indexed_paths = dict(index.all_paths())
    finally:
        index.close()
    assert acknowledged and acknowledged <= set(indexed_paths)
    assert not list(tmp.iterdir())
    assert sorted(indexed_paths.values()) == sorted(p.relative_to(files).as_posix() for p in files.rglob("*")
                                                    if p.is_file())
    assert "start-up check" in log.decode()


DEAD = 99_999_999
"""A process id no process has (above Linux's pid_max)."""


def test_start_up_check_settles_each_crash_point(tmp_path, caplog):
    """The states a crash can leave between linking a file and dropping its temporary
    name, made by hand: each is settled by the start-up check alone."""
    settings = archive_settings(tmp_path, "")
    settings = settings.model_copy(update={"archive": settings.archive.model_copy(update={"duplicates": "overwrite"})})
    with Archive(settings) as archive:
        files, tmp = archive.ingest.files, archive.ingest.scratch
        committed, replaced, unreplaced = image(), image(), image()
        for ds in (committed, replaced, unreplaced):
            assert archive.ingest.ingest(Received(CT, ds.SOPInstanceUID, ExplicitVRLittleEndian,
                                                  encoded(ds))).status == SUCCESS
        paths = rows(archive)

        os.link(files / paths[committed.SOPInstanceUID], tmp / f"{DEAD}-feed-1.part")

        never_indexed = image()
        placed = files / never_indexed.StudyInstanceUID / never_indexed.SeriesInstanceUID / \
            f"{never_indexed.SOPInstanceUID}.dcm"
        placed.parent.mkdir(parents=True)
        placed.write_bytes(part10(never_indexed))
        os.link(placed, tmp / f"{DEAD}-feed-2.part")

        old = files / paths[replaced.SOPInstanceUID]
        os.link(old, tmp / f"{DEAD}-feed-3.old")
        newer = image(StudyInstanceUID=replaced.StudyInstanceUID, SeriesInstanceUID=replaced.SeriesInstanceUID,
                      SOPInstanceUID=replaced.SOPInstanceUID, StudyDescription="newer")
        assert archive.ingest.ingest(Received(CT, newer.SOPInstanceUID, ExplicitVRLittleEndian,
                                              encoded(newer))).status == SUCCESS
        os.link(tmp / f"{DEAD}-feed-3.old", old)
        os.link(files / rows(archive)[replaced.SOPInstanceUID], tmp / f"{DEAD}-feed-4.part")

        kept = files / paths[unreplaced.SOPInstanceUID]
        os.link(kept, tmp / f"{DEAD}-feed-5.old")
        refused = kept.with_name(f"{unreplaced.SOPInstanceUID}.0123456789ab.dcm")
        refused.write_bytes(part10(image(StudyInstanceUID=unreplaced.StudyInstanceUID,
                                         SeriesInstanceUID=unreplaced.SeriesInstanceUID,
                                         SOPInstanceUID=unreplaced.SOPInstanceUID)))
        os.link(refused, tmp / f"{DEAD}-feed-6.part")

        (tmp / f"{DEAD}-feed-7.part").write_bytes(b"half an instance")
        (tmp / f"stow-{DEAD}-feed-0123.body").write_bytes(b"--XyZ\r\n")
        live = archive.ingest.receive(CT, generate_uid(), ExplicitVRLittleEndian)
        live.write(b"still arriving")

        caplog.set_level(logging.WARNING, "pacskit.archive")
        recovered = archive.recover()
        assert (recovered.temporary_files, len(recovered.removed_files), recovered.dropped_rows) == (8, 3, [])
        assert scratch(archive) == [live.path]
        live.discard()
        indexed = rows(archive)
        assert sorted(indexed) == sorted(str(ds.SOPInstanceUID) for ds in (committed, replaced, unreplaced))
        assert indexed[unreplaced.SOPInstanceUID] == paths[unreplaced.SOPInstanceUID]
        assert dcmread(files / indexed[replaced.SOPInstanceUID]).StudyDescription == "newer"
        assert_in_step(archive)
        assert any("start-up check" in r.getMessage() for r in caplog.records)


# 6. Concurrent series of one study on PostgreSQL.

def test_concurrent_series_of_one_study_keep_every_modality(tmp_path):
    modalities = ["CT", "MR", "PT", "US"]
    trials = 12
    with fresh_database() as url, running(tmp_path, url) as archive, ExitStack() as stack:
        stores = [Store(archive, stack) for _ in modalities]
        barrier = threading.Barrier(len(modalities))
        studies = [generate_uid() for _ in range(trials)]

        def sender(index: int) -> list[int]:
            statuses = []
            for trial, study in enumerate(studies):
                series = generate_uid()
                batch = [image(modalities[index], SOPClassUID=CT, PatientID=f"PT-{trial}", StudyInstanceUID=study,
                               SeriesInstanceUID=series) for _ in range(2)]
                barrier.wait(60)
                statuses += [stores[index].send(encoded(ds), str(ds.SOPInstanceUID))[0] for ds in batch]
            return statuses

        with ThreadPoolExecutor(len(modalities)) as pool:
            assert all(s == SUCCESS for result in pool.map(sender, range(len(modalities))) for s in result)

        keys = ("ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")
        found = {d.StudyInstanceUID: d for d in archive.index.find(Query(level="study", match={}, return_keys=keys))}
        assert {uid: (list(d.ModalitiesInStudy), d.NumberOfStudyRelatedSeries, d.NumberOfStudyRelatedInstances)
                for uid, d in found.items()} == {uid: (modalities, 4, 8) for uid in studies}
        patients = archive.index.find(Query(level="patient", model="patient", match={},
                                            return_keys=("NumberOfPatientRelatedStudies",
                                                         "NumberOfPatientRelatedInstances")))
        assert sorted((p.NumberOfPatientRelatedStudies, p.NumberOfPatientRelatedInstances) for p in patients) \
            == [(1, 8)] * trials
        client = Client(Settings(ae_title="PACSKIT"))
        for modality in modalities:
            by_modality = client.find(node_of(archive), Query.build("study", modality=modality))
            assert {d.StudyInstanceUID for d in by_modality} == set(studies), modality


# 7. Encapsulated pixel data under a native transfer syntax.

def encapsulated(ds: Dataset, syntax: str, fragment: int) -> bytes:
    """``ds`` without its Pixel Data, then an encapsulated Pixel Data (PS3.5 A.4:
    undefined length, an empty offset table, one fragment) as a sender bug writes it."""
    del ds.PixelData
    head = encoded(ds, syntax)
    tag = struct.pack("<HH", 0x7FE0, 0x0010)
    header = tag + (b"OB\0\0" if syntax != ImplicitVRLittleEndian else b"") + struct.pack("<I", 0xFFFFFFFF)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0) + struct.pack("<HHI", 0xFFFE, 0xE000, fragment) + bytes(fragment)
    return head + header + item + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("fragment", [1024, 300_000], ids=["small", "large"])
def test_encapsulated_pixel_data_under_a_native_syntax_is_refused(archive, caplog, syntax, fragment):
    caplog.set_level(logging.WARNING, "pacskit.archive")
    ds = image()
    status, comment = c_store(archive, ds, syntax=syntax, data=encapsulated(ds, syntax, fragment))
    assert status == DOES_NOT_MATCH and "encapsulated" in comment
    assert not rows(archive) and not stored_files(archive) and not scratch(archive)
    assert any(str(ds.SOPInstanceUID) in r.getMessage() and "encapsulated" in r.getMessage()
               for r in caplog.records)
    assert c_store(archive, image(), syntax=syntax) == (SUCCESS, "")
