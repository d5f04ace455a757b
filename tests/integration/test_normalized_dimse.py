"""DIMSE-N messages (PS3.7 Section 10) between pacskit's requestor and its acceptor over
a real socket: what one side sends is what the other serves, statuses and their Offending
Element and Error ID come back, an SCP can send an N-EVENT-REPORT on the association of
the request it answered, and a request the acceptor does not serve is answered, not
aborted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom import Dataset
from pynetdicom import build_context
from pynetdicom.sop_class import Verification

from pacskit.net.acceptor import Acceptor, DimseStatus, Peer
from pacskit.net.association import Association, associate
from pacskit.net.commands import N_EVENT_REPORT_RQ, N_GET_RQ, N_SET_RQ, STATUS, n_create_rq
from pacskit.net.normalized import (
    EventReports,
    NormalizedRequest,
    NormalizedResponse,
    n_action,
    n_create,
    n_delete,
    n_event_report,
    n_get,
    n_set,
)
from pacskit.net.scp import storage_scp
from pacskit.nodes import Node
from pacskit.settings import Settings
from pacskit.testing.peers import free_port

MPPS = "1.2.840.10008.3.1.2.3.3"
COMMITMENT = "1.2.840.10008.1.20.1"
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
ASSIGNED = "1.2.826.0.1.3680043.8.498.1"


class Recorder:
    """An SCP for two normalized SOP classes that records what it serves."""

    def __init__(self) -> None:
        self.served: list[tuple[Peer, NormalizedRequest]] = []

    def admit(self, peer: Peer) -> str | None:
        return None

    def allows(self, peer: Peer, operation: str, sop_class_uid: str) -> str | None:
        return "deletes are not allowed" if operation == "n-delete" else None

    def normalized(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        self.served.append((peer, request))
        if request.command_field == N_SET_RQ:
            raise DimseStatus(0x0110, "final state", offending=(0x00400252,), error_id=0xA710)
        if request.command_field == N_GET_RQ:
            answer = Dataset()
            answer.PerformedProcedureStepStatus = "IN PROGRESS"
            return NormalizedResponse(dataset=answer)
        if request.command_field == N_EVENT_REPORT_RQ:
            return NormalizedResponse()
        if request.sop_class_uid == COMMITMENT:
            return NormalizedResponse(after=self._report)
        return NormalizedResponse(sop_instance_uid=request.sop_instance_uid or ASSIGNED)

    def _report(self, association: Association) -> None:
        context = next(cx for cx in association.contexts.values() if cx.abstract_syntax == COMMITMENT)
        information = Dataset()
        information.TransactionUID = "1.2.3.99"
        result = n_event_report(association, context, COMMITMENT_INSTANCE, 1, information)
        self.report_status = result.status


@pytest.fixture
def scp() -> Iterator[tuple[Recorder, Node]]:
    recorder = Recorder()
    port = free_port()
    settings = Settings(ae_title="NSCP", port=port, bind_address="127.0.0.1")
    acceptor = Acceptor(settings, recorder, [build_context(MPPS), build_context(COMMITMENT)])
    acceptor.start(("127.0.0.1", port))
    try:
        yield recorder, Node(ae_title="NSCP", host="127.0.0.1", port=port)
    finally:
        acceptor.shutdown()


def _context(association: Association, sop_class: str):
    return next(cx for cx in association.contexts.values() if cx.abstract_syntax == sop_class)


def test_n_create_set_get_reach_the_scp_with_their_attributes(scp):
    recorder, node = scp
    attributes = Dataset()
    attributes.PerformedProcedureStepStatus = "IN PROGRESS"
    attributes.Modality = "CT"
    with associate(Settings(ae_title="MODALITY"), node, [build_context(MPPS)]) as association:
        context = _context(association, MPPS)
        created = n_create(association, context, attributes)
        modifications = Dataset()
        modifications.PerformedProcedureStepStatus = "COMPLETED"
        refused = n_set(association, context, created.sop_instance_uid, modifications)
        got = n_get(association, context, created.sop_instance_uid, [0x00400252, 0x00400253])

    assert created.status == 0x0000
    assert created.sop_instance_uid == ASSIGNED
    peer, request = recorder.served[0]
    assert peer.ae_title == "MODALITY"
    assert request.operation == "N-CREATE" and request.sop_instance_uid == ""
    assert request.dataset.Modality == "CT"
    assert (refused.status, refused.comment, refused.offending, refused.error_id) == \
        (0x0110, "final state", (0x00400252,), 0xA710)
    assert recorder.served[1][1].sop_instance_uid == ASSIGNED
    assert recorder.served[1][1].dataset.PerformedProcedureStepStatus == "COMPLETED"
    assert recorder.served[2][1].attributes == (0x00400252, 0x00400253)
    assert got.status == 0x0000 and got.dataset.PerformedProcedureStepStatus == "IN PROGRESS"


def test_an_n_create_naming_its_instance_keeps_it(scp):
    _, node = scp
    with associate(Settings(), node, [build_context(MPPS)]) as association:
        created = n_create(association, _context(association, MPPS), Dataset(), "1.2.3.4.5")
    assert created.sop_instance_uid == "1.2.3.4.5"


def test_an_scp_reports_an_event_on_the_association_of_the_action(scp):
    recorder, node = scp
    reports = EventReports(lambda request: 0x0000)
    information = Dataset()
    information.TransactionUID = "1.2.3.99"
    with associate(Settings(), node, [build_context(COMMITMENT)]) as association:
        association.handlers[N_EVENT_REPORT_RQ] = reports
        context = _context(association, COMMITMENT)
        result = n_action(association, context, COMMITMENT_INSTANCE, 1, information)
        association.serve(association.receive(association.open_request))

    assert result.status == 0x0000 and result.type_id == 1
    assert recorder.served[0][1].type_id == 1
    assert recorder.served[0][1].dataset.TransactionUID == "1.2.3.99"
    [report] = reports.received
    assert (report.sop_instance_uid, report.type_id, report.dataset.TransactionUID) == \
        (COMMITMENT_INSTANCE, 1, "1.2.3.99")
    assert recorder.report_status == 0x0000


def test_a_refused_permission_is_answered_not_authorized(scp):
    recorder, node = scp
    with associate(Settings(), node, [build_context(MPPS)]) as association:
        result = n_delete(association, _context(association, MPPS), ASSIGNED)
    assert result.status == 0x0124
    assert recorder.served == []


def test_a_request_for_another_sop_class_than_its_context_is_answered_0122(scp):
    recorder, node = scp
    with associate(Settings(), node, [build_context(MPPS)]) as association:
        context = _context(association, MPPS)
        message_id = association.next_message_id()
        response = next(association.request(context.context_id, n_create_rq(message_id, COMMITMENT, None,
                                                                             has_dataset=False)))
    assert response.us(STATUS) == 0x0122
    assert recorder.served == []


def test_a_storage_scp_answers_a_normalized_request_unrecognized():
    port = free_port()
    settings = Settings(ae_title="DEST", port=port, bind_address="127.0.0.1")
    node = Node(ae_title="DEST", host="127.0.0.1", port=port)
    with storage_scp(settings, lambda received: None, port=port), \
            associate(Settings(), node, [build_context(Verification)]) as association:
        context = _context(association, Verification)
        result = n_create(association, context, Dataset())
        echo_after = n_delete(association, context, "1.2.3")
    assert result.status == 0x0211
    assert echo_after.status == 0x0211

