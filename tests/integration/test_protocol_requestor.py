"""pacskit as association requestor (its command line), against an SCP scripted at the
PDU level: what pacskit puts on the wire, and what it tells the user, when the SCP answers
wrongly, collides on release, sends garbage or falls silent (PS3.8 9.2, Table 9-10;
PS3.7 9.1, 9.3). docs/protocol-behaviour.md lists each expectation with its clause."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from async_runner import run_async
from clirunner import assert_one_line_error, run_cli
from pdu_link import UnexpectedPdu
from pydicom import Dataset
from pydicom.uid import generate_uid
from raw_acceptor import RawAcceptor, RawConversation
from raw_pdu import (
    A_ABORT_PDU,
    A_RELEASE_RP_PDU,
    A_RELEASE_RQ_PDU,
    C_STORE_RSP,
    CT_IMAGE,
    INVALID_PDU_PARAMETER_VALUE,
    P_DATA_TF_PDU,
    PENDING,
    REASON_NOT_SPECIFIED,
    SERVICE_PROVIDER,
    SERVICE_USER,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    UNEXPECTED_PDU,
    UNRECOGNIZED_PDU,
    VERIFICATION,
    Abort,
    dataset_bytes,
    message_pdvs,
    p_data_tf,
    pdu,
    release_rp,
    release_rq,
)

from pacskit.net.commands import C_GET_RSP, c_echo_rsp, c_find_rsp, c_store_rq, retrieve_rsp

ABORTED = 15
TIMED_OUT = 13
SUCCESS = 0x0000
SOP_CLASS_NOT_SUPPORTED = 0x0122
SUB_OPERATIONS_FAILED = 0xA702


def next_non_data_pdu(conversation: RawConversation, timeout: float) -> tuple[int, bytes] | None:
    """The next PDU from pacskit that is not a P-DATA-TF (None: the connection closed)."""
    deadline = time.monotonic() + timeout
    while True:
        received = conversation.link.read_pdu(max(deadline - time.monotonic(), 0.01))
        if received is None or received[0] != P_DATA_TF_PDU:
            return received


def abort_of(received: tuple[int, bytes] | None) -> Abort:
    assert received is not None, "pacskit closed the connection without an A-ABORT PDU"
    assert received[0] == A_ABORT_PDU, f"PDU type 0x{received[0]:02X} instead of A-ABORT"
    return Abort.parse(received[1])


def ct_instance(study_uid: str) -> Dataset:
    dataset = Dataset()
    dataset.SOPClassUID = CT_IMAGE
    dataset.SOPInstanceUID = generate_uid()
    dataset.StudyInstanceUID = study_uid
    dataset.SeriesInstanceUID = generate_uid()
    dataset.PatientID = "PROTO02"
    dataset.Modality = "CT"
    return dataset


def dicom_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


both_drivers = pytest.mark.parametrize("run", [run_cli, run_async], ids=["blocking", "asyncio"])
"""The command line (the blocking driver), and AsyncClient on the asyncio driver."""


@both_drivers
def test_an_echo_answer_to_another_message_id_is_not_taken_as_the_answer(run):
    notes: dict[str, object] = {}

    def script(conversation):
        request = conversation.link.read_message(5)
        conversation.link.send_message(request.context_id,
                                       c_echo_rsp((request.message_id or 0) + 1, VERIFICATION, SUCCESS))
        sent = time.monotonic()
        notes["after"] = next_non_data_pdu(conversation, 6)
        notes["seconds"] = time.monotonic() - sent

    with RawAcceptor("WRONGID", script) as peer:
        result = run("--dimse-timeout", 3, "echo", peer.address)
        assert peer.finished.wait(10) and not peer.errors, peer.errors
    assert result.returncode != 0, f"pacskit took the answer to another request: {result.stdout}"
    assert abort_of(notes["after"]).source in (SERVICE_USER, SERVICE_PROVIDER)
    assert notes["seconds"] < 2, "pacskit waited for the DIMSE timeout instead of refusing the answer"
    assert_one_line_error(result, ABORTED, "WRONGID")


@both_drivers
def test_a_release_collision_is_answered_as_the_requestor_and_the_echo_succeeds(run):
    notes: dict[str, object] = {}

    def script(conversation):
        request = conversation.link.read_message(5)
        conversation.link.send_message(request.context_id,
                                       c_echo_rsp(request.message_id or 0, VERIFICATION, SUCCESS))
        notes["first"] = conversation.link.read_pdu(5)
        conversation.link.send(release_rq())
        crossed = time.monotonic()
        notes["answer"] = conversation.link.read_pdu(2)
        notes["answer_seconds"] = time.monotonic() - crossed
        conversation.link.send(release_rp())
        answered = time.monotonic()
        notes["after_rp"] = conversation.link.wait_closed(2)
        notes["close_seconds"] = time.monotonic() - answered

    with RawAcceptor("COLLIDE", script) as peer:
        result = run("echo", peer.address)
        assert peer.finished.wait(10) and not peer.errors, peer.errors
    assert notes["first"] is not None and notes["first"][0] == A_RELEASE_RQ_PDU, notes["first"]
    assert notes["answer"] is not None and notes["answer"][0] == A_RELEASE_RP_PDU, notes["answer"]
    assert notes["answer_seconds"] < 0.5 and notes["close_seconds"] < 0.5, notes
    assert notes["after_rp"] == []
    assert result.returncode == 0, result.stderr


@both_drivers
def test_an_unknown_pdu_from_the_scp_is_aborted_as_unrecognized(run):
    notes: dict[str, object] = {}

    def script(conversation):
        conversation.link.send(pdu(0x0A, b"\0\0\0\0"))
        notes["after"] = next_non_data_pdu(conversation, 5)

    with RawAcceptor("GARBAGE", script) as peer:
        result = run("echo", peer.address)
        assert peer.finished.wait(10) and not peer.errors, peer.errors
    received = abort_of(notes["after"])
    assert (received.source, received.reason) == (SERVICE_PROVIDER, UNRECOGNIZED_PDU), received
    assert_one_line_error(result, ABORTED, "GARBAGE")


def get_script(notes: dict[str, object], on_rejected_context: bool):
    """A C-GET SCP that sends one CT instance on a CT context (the first one it rejected,
    or an accepted one), records what pacskit answers, then reports the sub-operation
    failed."""

    def script(conversation):
        request = conversation.link.read_message(5)
        context = min(conversation.rejected) if on_rejected_context else conversation.context_for(CT_IMAGE)
        instance = ct_instance("1.2.826.0.1.3680043.10.1317.7")
        conversation.link.send(p_data_tf(*message_pdvs(context, c_store_rq(2, CT_IMAGE, instance.SOPInstanceUID),
                                                       dataset_bytes(instance, conversation.syntax_of(context)))))
        try:
            notes["answer"] = conversation.link.read_message(3)
        except UnexpectedPdu as other:
            notes["answer"] = (other.pdu_type, other.body)
            return
        conversation.link.send_message(request.context_id, retrieve_rsp(
            C_GET_RSP, request.message_id or 0, STUDY_ROOT_GET, SUB_OPERATIONS_FAILED, (None, 0, 1, 0)))
        conversation.answer_release(5)

    return script


def test_a_store_on_a_rejected_context_during_a_get_is_aborted_and_not_stored(tmp_path):
    notes: dict[str, object] = {}
    with RawAcceptor("BADCTX", get_script(notes, True), reject={CT_IMAGE}) as peer:
        result = run_cli("get", peer.address, "--study-uid", "1.2.826.0.1.3680043.10.1317.7",
                         "-o", tmp_path / "out")
        assert peer.finished.wait(10) and not peer.errors, peer.errors
    assert peer.conversations[0].rejected, "pacskit proposed no CT Image Storage context"
    assert dicom_files(tmp_path / "out") == [], f"stored; pacskit answered {notes['answer']}"
    answer = notes["answer"]
    assert isinstance(answer, tuple), f"pacskit answered the C-STORE-RQ: {answer}"
    received = abort_of(answer)
    assert received.source == SERVICE_PROVIDER and received.reason in (
        INVALID_PDU_PARAMETER_VALUE, UNEXPECTED_PDU, REASON_NOT_SPECIFIED), received
    assert result.returncode != 0, result.stdout
    assert dicom_files(tmp_path / "out") == []


def test_a_store_without_the_scp_role_during_a_get_is_refused_and_not_stored(tmp_path):
    notes: dict[str, object] = {}
    with RawAcceptor("NOROLE", get_script(notes, False), refuse_scp_role={CT_IMAGE}) as peer:
        result = run_cli("get", peer.address, "--study-uid", "1.2.826.0.1.3680043.10.1317.7",
                         "-o", tmp_path / "out")
        assert peer.finished.wait(10) and not peer.errors, peer.errors
    conversation = peer.conversations[0]
    assert conversation.asked_roles[CT_IMAGE][1] and CT_IMAGE not in conversation.roles
    assert dicom_files(tmp_path / "out") == [], f"stored; pacskit answered {notes['answer']}"
    answer = notes["answer"]
    assert not isinstance(answer, tuple), f"pacskit sent PDU 0x{answer[0]:02X} instead of a C-STORE-RSP"
    assert answer.command_field == C_STORE_RSP and answer.status == SOP_CLASS_NOT_SUPPORTED, answer
    assert result.returncode != 0, result.stdout
    assert dicom_files(tmp_path / "out") == []


@both_drivers
def test_find_responses_sharing_one_pdu_are_all_processed(run):
    studies = [generate_uid() for _ in range(2)]

    def script(conversation):
        request = conversation.link.read_message(5)
        items = []
        for study in studies:
            identifier = Dataset()
            identifier.QueryRetrieveLevel = "STUDY"
            identifier.StudyInstanceUID = study
            items += message_pdvs(request.context_id, c_find_rsp(request.message_id or 0, STUDY_ROOT_FIND,
                                                                 PENDING, has_identifier=True),
                                  dataset_bytes(identifier, conversation.syntax_of(request.context_id)))
        items += message_pdvs(request.context_id, c_find_rsp(request.message_id or 0, STUDY_ROOT_FIND,
                                                             SUCCESS, has_identifier=False))
        conversation.link.send(p_data_tf(*items))
        conversation.answer_release(5)

    with RawAcceptor("ONEPDU", script) as peer:
        result = run("--dimse-timeout", 2, "find", peer.address, "-f", "dicom-json")
        assert peer.finished.wait(10)
    assert result.returncode == 0, result.stderr
    assert sorted(m["0020000D"]["Value"][0] for m in json.loads(result.stdout)) == sorted(studies)
    assert not peer.errors, peer.errors
    assert peer.conversations[0].received[0][0] == A_RELEASE_RQ_PDU


@both_drivers
def test_an_scp_that_never_answers_a_find_is_aborted_after_the_dimse_timeout(run):
    notes: dict[str, object] = {}

    def script(conversation):
        conversation.link.read_message(5)
        asked = time.monotonic()
        notes["after"] = next_non_data_pdu(conversation, 6)
        notes["seconds"] = time.monotonic() - asked

    with RawAcceptor("SILENT", script) as peer:
        result = run("--dimse-timeout", 1, "find", peer.address, "-f", "json")
        assert peer.finished.wait(10) and not peer.errors, peer.errors
    abort_of(notes["after"])
    assert 0.8 <= notes["seconds"] <= 2.5, notes
    assert_one_line_error(result, TIMED_OUT, "SILENT")
