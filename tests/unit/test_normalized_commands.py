"""The DIMSE-N command sets (PS3.7 10.3) as pydicom reads them: every element the
Standard lists for each request and response, in ascending order after a right Command
Group Length, with the values given."""

from __future__ import annotations

from io import BytesIO

import pytest
from pynetdicom.dsutils import decode

from pacskit.net.commands import (
    N_ACTION_RSP,
    N_CREATE_RSP,
    N_EVENT_REPORT_RSP,
    N_GET_RSP,
    n_action_rq,
    n_create_rq,
    n_delete_rq,
    n_event_report_rq,
    n_get_rq,
    n_rsp,
    n_set_rq,
)
from pacskit.net.wire import Message, parse_command

MPPS = "1.2.840.10008.3.1.2.3.3"


def read(command: bytes):
    dataset = decode(BytesIO(command), True, True)
    assert dataset.CommandGroupLength == len(command) - 12
    tags = [int(element.tag) for element in dataset]
    assert tags == sorted(tags)
    return dataset


@pytest.mark.parametrize("command, field, expected", [
    (n_create_rq(7, MPPS, "1.2.3.4"), 0x0140,
     {"AffectedSOPClassUID": MPPS, "MessageID": 7, "CommandDataSetType": 0x0000, "AffectedSOPInstanceUID": "1.2.3.4"}),
    (n_create_rq(7, MPPS, None, has_dataset=False), 0x0140, {"CommandDataSetType": 0x0101}),
    (n_set_rq(8, MPPS, "1.2.3.4"), 0x0120,
     {"RequestedSOPClassUID": MPPS, "MessageID": 8, "CommandDataSetType": 0x0000, "RequestedSOPInstanceUID": "1.2.3.4"}),
    (n_get_rq(9, MPPS, "1.2.3", [0x00400252, 0x00080060]), 0x0110,
     {"RequestedSOPClassUID": MPPS, "CommandDataSetType": 0x0101, "RequestedSOPInstanceUID": "1.2.3",
      "AttributeIdentifierList": [0x00400252, 0x00080060]}),
    (n_action_rq(10, "1.2.840.10008.1.20.1", "1.2.840.10008.1.20.1.1", 1), 0x0130,
     {"RequestedSOPClassUID": "1.2.840.10008.1.20.1", "RequestedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
      "ActionTypeID": 1, "CommandDataSetType": 0x0000}),
    (n_event_report_rq(11, "1.2.840.10008.1.20.1", "1.2.840.10008.1.20.1.1", 2), 0x0100,
     {"AffectedSOPClassUID": "1.2.840.10008.1.20.1", "AffectedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
      "EventTypeID": 2, "MessageID": 11}),
    (n_delete_rq(12, MPPS, "1.2.3"), 0x0150,
     {"RequestedSOPClassUID": MPPS, "RequestedSOPInstanceUID": "1.2.3", "CommandDataSetType": 0x0101}),
])
def test_requests(command, field, expected):
    dataset = read(command)
    assert dataset.CommandField == field
    assert "Priority" not in dataset
    for keyword, value in expected.items():
        assert dataset[keyword].value == value, keyword


def test_a_failure_response_carries_offending_element_comment_and_error_id():
    dataset = read(n_rsp(N_CREATE_RSP, 7, MPPS, "1.2.3", 0x0120, comment="missing attributes",
                         offending=(0x00400252, 0x00400253), error_id=0xA710))
    assert (dataset.CommandField, dataset.MessageIDBeingRespondedTo, dataset.Status) == (0x8140, 7, 0x0120)
    assert dataset.OffendingElement == [0x00400252, 0x00400253]
    assert dataset.ErrorComment == "missing attributes"
    assert dataset.ErrorID == 0xA710
    assert dataset.AffectedSOPInstanceUID == "1.2.3"
    assert dataset.CommandDataSetType == 0x0101


@pytest.mark.parametrize("field, element", [(N_ACTION_RSP, "ActionTypeID"), (N_EVENT_REPORT_RSP, "EventTypeID")])
def test_action_and_event_responses_echo_their_type(field, element):
    dataset = read(n_rsp(field, 3, "1.2.840.10008.1.20.1", "1.2.840.10008.1.20.1.1", 0, type_id=1))
    assert dataset[element].value == 1


def test_a_response_without_type_or_failure_has_none_of_their_elements():
    dataset = read(n_rsp(N_GET_RSP, 3, MPPS, "1.2.3", 0, has_dataset=True))
    assert dataset.CommandDataSetType == 0x0000
    for keyword in ("ActionTypeID", "EventTypeID", "OffendingElement", "ErrorID", "ErrorComment"):
        assert keyword not in dataset


def test_a_uid_no_element_can_hold_is_left_out_of_a_response():
    dataset = read(n_rsp(N_CREATE_RSP, 3, MPPS, "é" * 10, 0x0117))
    assert "AffectedSOPInstanceUID" not in dataset


def test_tags_are_read_back_from_an_at_element():
    command = parse_command(n_get_rq(1, MPPS, "1.2", [0x00400252, 0x7FE00010]))
    assert Message(1, command, None).tags(0x1005) == [0x00400252, 0x7FE00010]
