"""`pacskit serve` as association acceptor, driven byte by byte by a raw requestor: what
it answers, on the wire, to messages and PDUs a conforming peer would not send (PS3.8 9.2
state machine, Table 9-10; PS3.8 Annex E; PS3.7). docs/protocol-behaviour.md lists each
expectation with its clause."""

from __future__ import annotations

import struct
import time

import httpx
import pytest
from pdu_link import UnexpectedPdu
from pydicom import Dataset
from pydicom.uid import generate_uid
from raw_pdu import (
    A_ABORT_PDU,
    A_RELEASE_RP_PDU,
    C_ECHO_RSP,
    C_FIND_RSP,
    C_STORE_RSP,
    COMMAND_FRAGMENT,
    INVALID_PDU_PARAMETER_VALUE,
    LAST_FRAGMENT,
    N_ACTION_RSP,
    PENDING,
    SECONDARY_CAPTURE,
    SERVICE_PROVIDER,
    SERVICE_USER,
    STUDY_ROOT_FIND,
    UNEXPECTED_PDU,
    UNRECOGNIZED_PDU,
    UNRECOGNIZED_PDU_PARAMETER,
    VERIFICATION,
    Abort,
    Proposed,
    abort,
    associate_rq,
    c_echo_rq,
    dataset_bytes,
    find_identifier,
    message_pdvs,
    n_action_rq,
    p_data_tf,
    pdu,
    pdv,
    release_rq,
    unknown_rq,
)
from raw_requestor import CALLING_AET, VERIFICATION_ONLY, RawRequestor
from served import ARCHIVE_AET, served_archive, web_url

from pacskit.net.commands import c_cancel_rq, c_echo_rsp, c_find_rq, c_store_rq
from pacskit.settings import NodeConfig

NETWORK_TIMEOUT = 2.0
SUCCESS = 0x0000
UNRECOGNIZED_OPERATION = 0x0211
STORAGE = (Proposed(1, VERIFICATION), Proposed(3, SECONDARY_CAPTURE), Proposed(5, STUDY_ROOT_FIND))


@pytest.fixture(scope="module")
def archive(tmp_path_factory, corpus):
    with served_archive(tmp_path_factory.mktemp("protocol"), [c.path for c in corpus],
                        network_timeout=NETWORK_TIMEOUT, acse_timeout=NETWORK_TIMEOUT,
                        dimse_timeout=NETWORK_TIMEOUT,
                        nodes={"raw": NodeConfig(ae_title=CALLING_AET, host="127.0.0.1", port=104)}) as served:
        yield served


def associate(archive, contexts=VERIFICATION_ONLY, **options) -> RawRequestor:
    return RawRequestor("127.0.0.1", archive.settings.port, ARCHIVE_AET, contexts, **options)


def assert_still_serving(archive) -> None:
    """A new association is accepted and answers a C-ECHO: the server survived."""
    with associate(archive) as fresh:
        assert fresh.echo(1) == SUCCESS
        fresh.release()


def assert_aborted(requestor: RawRequestor, source: int, reasons: tuple[int, ...], timeout: float = 1.5) -> None:
    """The next PDU, within ``timeout`` (less than the network timeout), is an A-ABORT
    from ``source`` with one of ``reasons``, then the acceptor closes the connection
    (PS3.8 9.2 AA-1, Sta13)."""
    received = requestor.read_abort(timeout)
    assert received.source == source and received.reason in reasons, received
    assert requestor.wait_closed(timeout) == []


def outcome(requestor: RawRequestor, timeout: float = 1.5) -> str:
    """What the acceptor did next, in words: an A-ABORT, a response, a close or nothing."""
    try:
        return f"A-ABORT {requestor.read_abort(timeout)}"
    except AssertionError as other:
        return str(other)


def secondary_capture() -> Dataset:
    dataset = Dataset()
    dataset.SOPClassUID = SECONDARY_CAPTURE
    dataset.SOPInstanceUID = generate_uid()
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.PatientID = "PROTO01"
    dataset.Modality = "OT"
    dataset.ConversionType = "WSD"
    return dataset


def stored(archive, sop_instance_uid: str) -> bool:
    """Whether the archive's QIDO-RS finds the instance."""
    response = httpx.get(f"{web_url(archive)}/instances", params={"SOPInstanceUID": sop_instance_uid},
                         timeout=10)
    assert response.status_code in (200, 204), response.text
    return response.status_code == 200 and bool(response.json())


def store_properly(archive, dataset: Dataset) -> int | None:
    with associate(archive, STORAGE) as requestor:
        requestor.send_message(3, c_store_rq(1, SECONDARY_CAPTURE, dataset.SOPInstanceUID),
                               dataset_bytes(dataset))
        response = requestor.read_message()
        assert response.command_field == C_STORE_RSP and response.responds_to == 1, response
        requestor.release()
        return response.status


def test_two_echo_requests_in_one_pdu_are_both_answered(archive):
    with associate(archive) as requestor:
        requestor.send(p_data_tf(*message_pdvs(1, c_echo_rq(1)), *message_pdvs(1, c_echo_rq(2))))
        answers = [requestor.read_message(1.5) for _ in range(2)]
        assert [(a.command_field, a.responds_to, a.status) for a in answers] == \
            [(C_ECHO_RSP, 1, SUCCESS), (C_ECHO_RSP, 2, SUCCESS)]
        requestor.release()


def test_a_dataset_on_another_context_than_its_command_aborts_and_stores_nothing(archive):
    dataset = secondary_capture()
    contexts = (Proposed(1, VERIFICATION), Proposed(3, SECONDARY_CAPTURE), Proposed(5, SECONDARY_CAPTURE))
    with associate(archive, contexts) as requestor:
        assert {3, 5} <= set(requestor.negotiated.contexts)
        requestor.send(p_data_tf(*message_pdvs(3, c_store_rq(1, SECONDARY_CAPTURE, dataset.SOPInstanceUID),
                                               dataset_bytes(dataset), data_context_id=5)))
        answer = outcome(requestor)
    assert not stored(archive, dataset.SOPInstanceUID), f"stored; the acceptor's answer: {answer}"
    assert answer.startswith("A-ABORT Abort(source=2,"), answer
    assert store_properly(archive, dataset) == SUCCESS
    assert stored(archive, dataset.SOPInstanceUID), "the check for the instance cannot see it"


def test_an_unknown_pdu_type_is_aborted_as_unrecognized(archive):
    with associate(archive) as requestor:
        requestor.send(pdu(0x0A, b"\0\0\0\0"))
        assert_aborted(requestor, SERVICE_PROVIDER, (UNRECOGNIZED_PDU,))
    assert_still_serving(archive)


@pytest.mark.parametrize("name", ["A-ASSOCIATE-RQ", "A-ASSOCIATE-AC", "A-RELEASE-RP"])
def test_an_association_pdu_during_data_transfer_is_aborted_as_unexpected(archive, name):
    request = associate_rq(ARCHIVE_AET, "RAWSCU", [Proposed(1, VERIFICATION)])
    sent = {"A-ASSOCIATE-RQ": request, "A-ASSOCIATE-AC": pdu(0x02, request[6:]),
            "A-RELEASE-RP": pdu(A_RELEASE_RP_PDU, b"\0\0\0\0")}[name]
    with associate(archive) as requestor:
        requestor.send(sent)
        assert_aborted(requestor, SERVICE_PROVIDER, (UNEXPECTED_PDU,))


def test_a_release_request_is_answered_within_a_second_then_the_connection_closes(archive):
    with associate(archive) as requestor:
        assert requestor.echo(1) == SUCCESS
        started = time.monotonic()
        requestor.send(release_rq())
        answer = requestor.read_pdu(1.0)
        assert answer is not None and answer[0] == A_RELEASE_RP_PDU, answer
        assert time.monotonic() - started < 1.0


def test_an_idle_association_gets_an_abort_after_the_network_timeout(archive):
    with associate(archive, timeout=NETWORK_TIMEOUT + 3) as requestor:
        started = time.monotonic()
        received = requestor.read_pdu(NETWORK_TIMEOUT + 1.5)
        waited = time.monotonic() - started
        assert received is not None, f"closed after {waited:.1f} s without an A-ABORT PDU"
        assert received[0] == A_ABORT_PDU, received
        assert NETWORK_TIMEOUT - 0.5 <= waited <= NETWORK_TIMEOUT + 1.0, waited
        assert requestor.wait_closed(2) == []


def test_a_pdu_longer_than_the_announced_maximum_is_aborted_and_nothing_stored(archive):
    dataset = secondary_capture()
    with associate(archive, STORAGE) as requestor:
        limit = requestor.negotiated.max_pdu
        assert limit > 0, "serve announced no maximum PDU length"
        command = pdv(3, COMMAND_FRAGMENT | LAST_FRAGMENT,
                      c_store_rq(1, SECONDARY_CAPTURE, dataset.SOPInstanceUID))
        dataset.add_new(0x7FE00010, "OB", bytes(limit + 2))
        data = pdv(3, LAST_FRAGMENT, dataset_bytes(dataset))
        oversize = p_data_tf(command, data)
        assert len(oversize) - 6 > limit
        requestor.send(oversize)
        answer = outcome(requestor)
    assert not stored(archive, dataset.SOPInstanceUID), f"stored; the acceptor's answer: {answer}"
    assert answer in (f"A-ABORT {Abort(SERVICE_PROVIDER, INVALID_PDU_PARAMETER_VALUE)}",
                      f"A-ABORT {Abort(SERVICE_PROVIDER, UNRECOGNIZED_PDU_PARAMETER)}"), answer
    assert_still_serving(archive)


def test_an_n_action_on_a_verification_association_is_refused_not_aborted(archive):
    with associate(archive) as requestor:
        requestor.send_message(1, n_action_rq(7, VERIFICATION, generate_uid()))
        response = requestor.read_message(1.5)
        assert (response.command_field, response.responds_to) == (N_ACTION_RSP, 7), response
        assert response.status == UNRECOGNIZED_OPERATION, hex(response.status or 0)
        assert requestor.echo(8) == SUCCESS
        requestor.release()


def test_an_unknown_command_is_refused_or_aborted_never_left_unanswered(archive):
    with associate(archive) as requestor:
        requestor.send_message(1, unknown_rq(9, 0x0050, VERIFICATION))
        try:
            response = requestor.read_message(1.5)
        except UnexpectedPdu as received:
            assert received.pdu_type == A_ABORT_PDU, received
            assert received.body[2] in (SERVICE_USER, SERVICE_PROVIDER), received.body.hex()
            return
        assert response.responds_to == 9 and response.status == UNRECOGNIZED_OPERATION, response
        assert requestor.echo(10) == SUCCESS
        requestor.release()


def test_a_cancel_of_no_outstanding_request_is_ignored(archive):
    with associate(archive) as requestor:
        requestor.send_message(1, c_cancel_rq(41))
        assert requestor.echo(42) == SUCCESS
        requestor.release()


def test_a_response_to_nothing_is_dropped_not_answered(archive):
    with associate(archive) as requestor:
        requestor.send_message(1, c_echo_rsp(40, VERIFICATION, SUCCESS))
        assert requestor.echo(42) == SUCCESS
        requestor.release()


def test_an_abort_in_the_middle_of_a_find_closes_the_connection_and_serving_goes_on(archive):
    with associate(archive, STORAGE) as requestor:
        requestor.send_message(5, c_find_rq(1, STUDY_ROOT_FIND),
                               find_identifier("STUDY", StudyInstanceUID=""))
        first = requestor.read_message(2)
        assert (first.command_field, first.status) == (C_FIND_RSP, PENDING), first
        requestor.send(abort())
        requestor.wait_closed(2)
    with associate(archive, STORAGE) as again:
        again.send_message(5, c_find_rq(1, STUDY_ROOT_FIND), find_identifier("STUDY", StudyInstanceUID=""))
        statuses = []
        while not statuses or statuses[-1] == PENDING:
            statuses.append(again.read_message(2).status)
        assert statuses[-1] == SUCCESS and len(statuses) > 1, statuses
        again.release()


def test_a_pdv_running_past_the_end_of_its_pdu_is_aborted(archive):
    command = c_echo_rq(1)
    body = struct.pack(">IBB", len(command) + 2 + 40, 1, COMMAND_FRAGMENT | LAST_FRAGMENT) + command
    with associate(archive) as requestor:
        requestor.send(pdu(0x04, body))
        assert_aborted(requestor, SERVICE_PROVIDER, (INVALID_PDU_PARAMETER_VALUE, UNEXPECTED_PDU))
    assert_still_serving(archive)
