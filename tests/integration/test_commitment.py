"""Storage Commitment Push Model (PS3.4 J) between pacskit's SCU and ``pacskit serve``:
the report on the request's association or on a new one, each Failure Reason (missing
instance, wrong SOP class, a file changed on disk after it was stored, a duplicate
Transaction UID), malformed requests answered with their status, the command line's
output and exit codes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from clirunner import assert_one_line_error, run_cli
from pydicom import Dataset
from pynetdicom import build_context
from serve_process import CLIENT_AET, ServeProcess
from served import dimse_node, served_archive

from pacskit import Client
from pacskit.commitment import (
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH,
    Reference,
    Report,
    action_information,
)
from pacskit.errors import NotCommitted
from pacskit.net.acceptor import Acceptor
from pacskit.net.association import associate
from pacskit.net.commitment import request_commitment
from pacskit.net.normalized import NormalizedResponse, n_action
from pacskit.net.scp import report_listener
from pacskit.scan import read_file
from pacskit.settings import NodeConfig, Settings
from pacskit.testing.peers import free_port

REQUESTER = "PACSKIT"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
MISSING = "1.2.826.0.1.3680043.8.498.999999"


@pytest.fixture
def stored(corpus):
    """Three instances of the corpus, as references."""
    files = [item.path for item in corpus[:3]]
    return files, [Reference(read_file(f).sop_class_uid, read_file(f).sop_instance_uid) for f in files]


@pytest.fixture
def requester_port():
    return free_port()


@pytest.fixture
def archive(tmp_path, stored, requester_port):
    """pacskit serve holding the three instances, knowing the requester at its port."""
    nodes = {"requester": NodeConfig(ae_title=REQUESTER, host="127.0.0.1", port=requester_port)}
    with served_archive(tmp_path, stored[0], nodes=nodes) as served:
        yield served


class _Reports:
    """The reports a listener of ours receives on new associations."""

    def __init__(self) -> None:
        self.received: list[Report] = []
        self.arrived = threading.Event()

    def take(self, peer, request) -> int:
        self.received.append(Report.from_dataset(request.dataset))
        self.arrived.set()
        return 0x0000


def _settings(port: int) -> Settings:
    return Settings(ae_title=REQUESTER, port=port, bind_address="127.0.0.1", dimse_timeout=10)


def test_every_instance_held_is_committed_on_the_association_of_the_request(archive, stored, requester_port):
    _, references = stored
    result = Client(_settings(requester_port)).commit(dimse_node(archive), references, timeout=10)
    assert result.same_association
    assert result.report.committed == references and result.report.failed == []
    assert result.report.transaction_uid == result.transaction_uid
    result.raise_for_status()


def test_a_missing_instance_and_a_wrong_sop_class_are_reported_with_their_reasons(archive, stored, requester_port):
    _, references = stored
    wrong_class = Reference(MR_IMAGE if references[1].sop_class_uid != MR_IMAGE else CT_IMAGE,
                            references[1].sop_instance_uid)
    asked = [references[0], wrong_class, Reference(CT_IMAGE, MISSING)]
    result = Client(_settings(requester_port)).commit(dimse_node(archive), asked, timeout=10)
    assert result.report.committed == [references[0]]
    assert {(f.reference.sop_instance_uid, f.reason) for f in result.report.failed} == {
        (references[1].sop_instance_uid, 0x0119), (MISSING, 0x0112)}
    with pytest.raises(NotCommitted, match="2 of 3"):
        result.raise_for_status()


def test_a_file_changed_on_disk_after_it_was_stored_is_not_committed(archive, stored, requester_port):
    _, references = stored
    path = archive.ingest.files / archive.index.instance(references[2].sop_instance_uid).path
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    truncated = archive.ingest.files / archive.index.instance(references[1].sop_instance_uid).path
    truncated.write_bytes(truncated.read_bytes()[:-1])

    result = Client(_settings(requester_port)).commit(dimse_node(archive), references, timeout=10)
    assert result.report.committed == [references[0]]
    assert {(f.reference, f.reason) for f in result.report.failed} == {(references[1], 0x0110),
                                                                       (references[2], 0x0110)}


def test_a_requester_that_releases_at_once_gets_its_report_on_a_new_association(archive, stored, requester_port):
    _, references = stored
    settings = _settings(requester_port)
    reports = _Reports()
    with report_listener(settings, STORAGE_COMMITMENT_PUSH, reports.take):
        with associate(settings, dimse_node(archive), [build_context(STORAGE_COMMITMENT_PUSH)]) as association:
            context = next(iter(association.contexts.values()))
            answered = n_action(association, context, STORAGE_COMMITMENT_INSTANCE, 1,
                                action_information("1.2.826.0.1.3680043.8.498.77", references))
        assert reports.arrived.wait(10)
    assert answered.status == 0x0000
    [report] = reports.received
    assert report.transaction_uid == "1.2.826.0.1.3680043.8.498.77"
    assert report.committed == references


def test_a_requester_that_releases_instead_of_answering_the_report_gets_it_again_on_a_new_association(
        archive, stored, requester_port):
    _, references = stored
    settings = _settings(requester_port)
    reports = _Reports()
    with report_listener(settings, STORAGE_COMMITMENT_PUSH, reports.take):
        with associate(settings, dimse_node(archive), [build_context(STORAGE_COMMITMENT_PUSH)]) as association:
            context = next(iter(association.contexts.values()))
            n_action(association, context, STORAGE_COMMITMENT_INSTANCE, 1,
                     action_information("1.2.826.0.1.3680043.8.498.80", references))
            unanswered = association.receive()
        assert reports.arrived.wait(10)
    assert unanswered.us(0x00000100) == 0x0100
    assert [r.committed for r in reports.received] == [references]
    assert request_commitment(settings, dimse_node(archive), references, timeout=10).same_association


def test_a_duplicate_transaction_uid_fails_every_instance_and_leaves_the_first_alone(archive, stored, requester_port):
    _, references = stored
    settings = _settings(requester_port)
    uid = "1.2.826.0.1.3680043.8.498.78"
    first = request_commitment(settings, dimse_node(archive), references, timeout=10, transaction_uid=uid)
    again = request_commitment(settings, dimse_node(archive), references[:1], timeout=10, transaction_uid=uid)
    assert first.report.committed == references
    assert [(f.reference, f.reason) for f in again.report.failed] == [(references[0], 0x0131)]
    kept = [t for t in _transactions(archive) if t.transaction_uid == uid]
    assert [(t.duplicate, len(t.report.committed)) for t in kept] == [(False, 3), (True, 0)]


def _transactions(archive):
    from pacskit.archive.commitment_store import Transactions

    store = Transactions(archive.index)
    with archive.index.engine.connect() as conn:
        ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM commitment_transaction ORDER BY id")]
    return [store.get(i) for i in ids]


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize(("instance", "action", "information", "status", "offending"), [
    (STORAGE_COMMITMENT_INSTANCE, 1, {}, 0x0115, 0x00081195),
    (STORAGE_COMMITMENT_INSTANCE, 1, {"TransactionUID": "1.2.3"}, 0x0115, 0x00081199),
    (STORAGE_COMMITMENT_INSTANCE, 1, {"TransactionUID": "1.02.3", "ReferencedSOPSequence": "item"}, 0x0115,
     0x00081195),
    (STORAGE_COMMITMENT_INSTANCE, 1, {"TransactionUID": "1.2.3", "ReferencedSOPSequence": "no uid"}, 0x0115,
     0x00081199),
    (STORAGE_COMMITMENT_INSTANCE, 2, {"TransactionUID": "1.2.3", "ReferencedSOPSequence": "item"}, 0x0123, None),
    ("1.2.3.4", 1, {"TransactionUID": "1.2.3", "ReferencedSOPSequence": "item"}, 0x0112, None),
])
def test_a_malformed_request_is_answered_with_its_status_and_the_server_keeps_serving(
        archive, stored, requester_port, instance, action, information, status, offending):
    _, references = stored
    dataset = Dataset()
    if "TransactionUID" in information:
        dataset.TransactionUID = information["TransactionUID"]
    if "ReferencedSOPSequence" in information:
        item = Dataset()
        if information["ReferencedSOPSequence"] == "item":
            item.ReferencedSOPClassUID = references[0].sop_class_uid
        item.ReferencedSOPInstanceUID = references[0].sop_instance_uid
        dataset.ReferencedSOPSequence = [item]
    settings = _settings(requester_port)
    with associate(settings, dimse_node(archive), [build_context(STORAGE_COMMITMENT_PUSH)]) as association:
        answered = n_action(association, next(iter(association.contexts.values())), instance, action, dataset)
    assert answered.status == status
    if offending is not None:
        assert answered.offending == (offending,)
    assert request_commitment(settings, dimse_node(archive), references, timeout=10).report.committed == references


def test_a_peer_not_allowed_to_ask_for_commitment_is_refused(tmp_path, stored, requester_port):
    nodes = {"requester": NodeConfig(ae_title=REQUESTER, host="127.0.0.1", port=requester_port, allow=["echo"])}
    with served_archive(tmp_path, stored[0], nodes=nodes) as served, \
            associate(_settings(requester_port), dimse_node(served),
                      [build_context(STORAGE_COMMITMENT_PUSH)]) as association:
        answered = n_action(association, next(iter(association.contexts.values())), STORAGE_COMMITMENT_INSTANCE, 1,
                            action_information("1.2.3", stored[1]))
    assert answered.status == 0x0124


def _address(archive) -> str:
    return f"dicom://{dimse_node(archive).ae_title}@127.0.0.1:{archive.settings.port}"


def test_the_command_line_prints_each_instance_and_exits_29_when_one_failed(archive, stored, requester_port,
                                                                           tmp_path):
    files, references = stored
    env = {"PACSKIT_AE_TITLE": REQUESTER, "PACSKIT_PORT": str(requester_port), "PACSKIT_BIND_ADDRESS": "127.0.0.1"}
    done = run_cli("commit", _address(archive), *files, env=env)
    assert done.returncode == 0, done.stderr
    assert all(f"{r.sop_instance_uid}  CT Image Storage  committed" in done.stdout for r in references)
    assert "Committed 3 of 3 instances" in done.stdout

    by_study = run_cli("commit", _address(archive), "--study-uid", _study(files[0]),
                       "--format", "json", env=env)
    assert by_study.returncode == 0, by_study.stderr
    assert {item["sop_instance_uid"] for item in json.loads(by_study.stdout)["committed"]} >= \
        {references[0].sop_instance_uid}

    stranger = tmp_path / "stranger.dcm"
    _write_other_instance(files[0], stranger)
    partly = run_cli("commit", _address(archive), files[0], stranger, "--format", "json", env=env)
    assert partly.returncode == 29, partly.stderr
    answer = json.loads(partly.stdout)
    assert [f["failure_reason"] for f in answer["failed"]] == [0x0112]
    assert answer["failed"][0]["reason"] == "0x0112 no such object instance"
    assert "1 of 2 instance(s) not committed" in partly.stderr


def test_the_command_line_exits_21_when_the_request_is_refused(archive, stored, requester_port):
    files, _ = stored
    env = {"PACSKIT_AE_TITLE": "STRANGER", "PACSKIT_PORT": str(requester_port), "PACSKIT_BIND_ADDRESS": "127.0.0.1"}
    refused = run_cli("commit", _address(archive), *files, env=env)
    assert_one_line_error(refused, 21, "0x0124")


class _Silent:
    """An SCP that accepts every commitment request and never reports."""

    def admit(self, peer):
        return None

    def allows(self, peer, operation, sop_class_uid):
        return None

    def normalized(self, peer, request):
        return NormalizedResponse()


def test_the_command_line_exits_17_when_no_report_comes_in_time(stored, requester_port):
    files, _ = stored
    port = free_port()
    acceptor = Acceptor(Settings(ae_title="SILENT", port=port), _Silent(), [build_context(STORAGE_COMMITMENT_PUSH)])
    acceptor.start(("127.0.0.1", port))
    try:
        env = {"PACSKIT_AE_TITLE": REQUESTER, "PACSKIT_PORT": str(requester_port),
               "PACSKIT_BIND_ADDRESS": "127.0.0.1"}
        silent = run_cli("commit", f"dicom://SILENT@127.0.0.1:{port}", *files, "--timeout", "1", env=env)
    finally:
        acceptor.shutdown()
    assert_one_line_error(silent, 19, "sent no report within 1 s")


def _study(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def _write_other_instance(source: Path, target: Path) -> None:
    from pydicom import dcmread

    ds = dcmread(source)
    ds.SOPInstanceUID = MISSING
    ds.file_meta.MediaStorageSOPInstanceUID = MISSING
    ds.save_as(target, enforce_file_format=True)


def test_a_report_undelivered_when_serve_stops_is_delivered_after_it_restarts(tmp_path, stored):
    files, references = stored
    port = free_port()
    serve = ServeProcess(tmp_path / "data", settings={
        "NODES__CLIENT__PORT": str(port), "ARCHIVE__COMMITMENT__ATTEMPTS": "2", "ARCHIVE__COMMITMENT__DELAY": "0.2"})
    settings = Settings(ae_title=CLIENT_AET, port=port, bind_address="127.0.0.1", dimse_timeout=10)
    uid = "1.2.826.0.1.3680043.8.498.79"
    with serve:
        serve.load(files)
        with associate(settings, serve.node, [build_context(STORAGE_COMMITMENT_PUSH)]) as association:
            answered = n_action(association, next(iter(association.contexts.values())), STORAGE_COMMITMENT_INSTANCE,
                                1, action_information(uid, references))
        assert answered.status == 0x0000
        _wait_for_line(serve, f"commitment report {uid} to {CLIENT_AET}@127.0.0.1:{port} not delivered after 2")
        assert "(attempt 1 of 2)" in serve.log()

    reports = _Reports()
    with report_listener(settings, STORAGE_COMMITMENT_PUSH, reports.take), serve:
        assert reports.arrived.wait(20), serve.log()
    [report] = reports.received
    assert report.transaction_uid == uid and report.committed == references


def _wait_for_line(serve: ServeProcess, text: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while text not in serve.log():
        assert time.monotonic() < deadline, serve.log()
        assert serve.is_alive(), serve.log()
        time.sleep(0.05)
