"""DIMSE command sets encoded by hand (PS3.7 9.3, 10.3, 9.1.2.1 and Annex E): group 0000,
always Implicit VR Little Endian — the composite (C-*) and normalized (N-*) messages."""

from __future__ import annotations

import struct

C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_GET_RQ = 0x0010
C_GET_RSP = 0x8010
C_FIND_RQ = 0x0020
C_FIND_RSP = 0x8020
C_MOVE_RQ = 0x0021
C_MOVE_RSP = 0x8021
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
C_CANCEL_RQ = 0x0FFF
N_EVENT_REPORT_RQ = 0x0100
N_EVENT_REPORT_RSP = 0x8100
N_GET_RQ = 0x0110
N_GET_RSP = 0x8110
N_SET_RQ = 0x0120
N_SET_RSP = 0x8120
N_ACTION_RQ = 0x0130
N_ACTION_RSP = 0x8130
N_CREATE_RQ = 0x0140
N_CREATE_RSP = 0x8140
N_DELETE_RQ = 0x0150
N_DELETE_RSP = 0x8150
NORMALIZED_REQUESTS = {
    N_EVENT_REPORT_RQ: "N-EVENT-REPORT", N_GET_RQ: "N-GET", N_SET_RQ: "N-SET",
    N_ACTION_RQ: "N-ACTION", N_CREATE_RQ: "N-CREATE", N_DELETE_RQ: "N-DELETE",
}

AFFECTED_SOP_CLASS_UID = 0x0002
REQUESTED_SOP_CLASS_UID = 0x0003
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
MESSAGE_ID_BEING_RESPONDED_TO = 0x0120
MOVE_DESTINATION = 0x0600
PRIORITY = 0x0700
COMMAND_DATA_SET_TYPE = 0x0800
STATUS = 0x0900
OFFENDING_ELEMENT = 0x0901
ERROR_COMMENT = 0x0902
ERROR_ID = 0x0903
AFFECTED_SOP_INSTANCE_UID = 0x1000
REQUESTED_SOP_INSTANCE_UID = 0x1001
EVENT_TYPE_ID = 0x1002
ATTRIBUTE_IDENTIFIER_LIST = 0x1005
ACTION_TYPE_ID = 0x1008
REMAINING_SUBOPERATIONS = 0x1020
COMPLETED_SUBOPERATIONS = 0x1021
FAILED_SUBOPERATIONS = 0x1022
WARNING_SUBOPERATIONS = 0x1023
MOVE_ORIGINATOR_AE_TITLE = 0x1030
MOVE_ORIGINATOR_MESSAGE_ID = 0x1031

DATA_SET_PRESENT = 0x0000
NO_DATA_SET = 0x0101
PRIORITY_MEDIUM = 0x0000


def c_store_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str,
               move_originator: tuple[str, int] | None = None) -> bytes:
    """A C-STORE-RQ (PS3.7 9.3.1.1); a sub-operation of a C-MOVE carries the Move
    Originator AE Title and Message ID (``move_originator``)."""
    originator = [] if move_originator is None else [
        (MOVE_ORIGINATOR_AE_TITLE, ae(move_originator[0])),
        (MOVE_ORIGINATOR_MESSAGE_ID, us(move_originator[1])),
    ]
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(C_STORE_RQ)),
        (MESSAGE_ID, us(message_id)),
        (PRIORITY, us(PRIORITY_MEDIUM)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT)),
        (AFFECTED_SOP_INSTANCE_UID, uid(sop_instance_uid)),
        *originator,
    )


def c_echo_rq(message_id: int, sop_class_uid: str = "1.2.840.10008.1.1") -> bytes:
    """A C-ECHO-RQ (PS3.7 9.3.5.1)."""
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(C_ECHO_RQ)),
        (MESSAGE_ID, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(NO_DATA_SET)),
    )


def failure_rsp(command_field: int, message_id: int, sop_class_uid: str, status: int,
                comment: str = "") -> bytes:
    """The response ``command_field`` to a request this side does not carry out, with a
    failure ``status`` (PS3.7 C.5: 0x0211 unrecognized operation, 0x0122 SOP class not
    supported) and no dataset."""
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(command_field)),
        (MESSAGE_ID_BEING_RESPONDED_TO, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(NO_DATA_SET)),
        (STATUS, us(status)),
        *_comment(comment),
    )


def c_store_rsp(message_id: int, sop_class_uid: str, sop_instance_uid: str, status: int,
                comment: str = "") -> bytes:
    """A C-STORE-RSP (PS3.7 9.3.1.2), with an Error Comment when one is given. The
    Affected SOP Class and Instance UIDs echo the request's (U(=), PS3.7 Table 9-2); one
    that no UI element can hold (not ASCII, over 64 characters) is left out."""
    return command_set(
        *_echoed(AFFECTED_SOP_CLASS_UID, sop_class_uid),
        (COMMAND_FIELD, us(C_STORE_RSP)),
        (MESSAGE_ID_BEING_RESPONDED_TO, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(NO_DATA_SET)),
        (STATUS, us(status)),
        *_comment(comment),
        *_echoed(AFFECTED_SOP_INSTANCE_UID, sop_instance_uid),
    )


def _echoed(element: int, value: str) -> list[tuple[int, bytes]]:
    """A UI element echoing a peer's ``value``, if it can be encoded (PS3.5 9.1: ASCII,
    at most 64 characters)."""
    if not value.isascii() or len(value) > 64:
        return []
    return [(element, uid(value))]


def c_echo_rsp(message_id: int, sop_class_uid: str, status: int) -> bytes:
    """A C-ECHO-RSP (PS3.7 9.3.5.2)."""
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(C_ECHO_RSP)),
        (MESSAGE_ID_BEING_RESPONDED_TO, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(NO_DATA_SET)),
        (STATUS, us(status)),
    )


def c_find_rsp(message_id: int, sop_class_uid: str, status: int, *, has_identifier: bool,
               comment: str = "", offending: tuple[int, ...] = ()) -> bytes:
    """A C-FIND-RSP (PS3.7 9.3.2.2); a pending one carries an identifier, a failure may
    name the ``offending`` elements of the request's (PS3.4 C.4.1.1.4: 0xA900, 0xC000)."""
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(C_FIND_RSP)),
        (MESSAGE_ID_BEING_RESPONDED_TO, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT if has_identifier else NO_DATA_SET)),
        (STATUS, us(status)),
        *([(OFFENDING_ELEMENT, at(offending))] if offending else []),
        *_comment(comment),
    )


def retrieve_rsp(command_field: int, message_id: int, sop_class_uid: str, status: int,
                 counts: tuple[int | None, int, int, int], *, has_identifier: bool = False,
                 comment: str = "") -> bytes:
    """A C-GET-RSP or C-MOVE-RSP (PS3.7 9.3.3.2, 9.3.4.2), with the sub-operation
    ``counts`` (remaining — None in a final response —, completed, failed, warning)."""
    remaining, completed, failed, warning = (None if n is None else min(n, 0xFFFF) for n in counts)
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(command_field)),
        (MESSAGE_ID_BEING_RESPONDED_TO, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT if has_identifier else NO_DATA_SET)),
        (STATUS, us(status)),
        *_comment(comment),
        *([(REMAINING_SUBOPERATIONS, us(remaining))] if remaining is not None else []),
        (COMPLETED_SUBOPERATIONS, us(completed or 0)),
        (FAILED_SUBOPERATIONS, us(failed or 0)),
        (WARNING_SUBOPERATIONS, us(warning or 0)),
    )


def _comment(comment: str) -> list[tuple[int, bytes]]:
    """An Error Comment element (LO, at most 64 characters), if there is a comment."""
    if not comment:
        return []
    raw = comment[:64].encode("ascii", "replace")
    return [(ERROR_COMMENT, raw + b" " if len(raw) % 2 else raw)]


def c_get_rq(message_id: int, sop_class_uid: str) -> bytes:
    """A C-GET-RQ (PS3.7 9.3.3.1); the identifier follows as its dataset."""
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(C_GET_RQ)),
        (MESSAGE_ID, us(message_id)),
        (PRIORITY, us(PRIORITY_MEDIUM)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT)),
    )


def c_move_rq(message_id: int, sop_class_uid: str, destination: str) -> bytes:
    """A C-MOVE-RQ (PS3.7 9.3.4.1) to the AE title ``destination``; the identifier
    follows as its dataset."""
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(C_MOVE_RQ)),
        (MESSAGE_ID, us(message_id)),
        (MOVE_DESTINATION, ae(destination)),
        (PRIORITY, us(PRIORITY_MEDIUM)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT)),
    )


def c_find_rq(message_id: int, sop_class_uid: str) -> bytes:
    """A C-FIND-RQ (PS3.7 9.3.2.1); the identifier follows as its dataset."""
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(C_FIND_RQ)),
        (MESSAGE_ID, us(message_id)),
        (PRIORITY, us(PRIORITY_MEDIUM)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT)),
    )


def c_cancel_rq(message_id: int) -> bytes:
    """A C-CANCEL-RQ (PS3.7 9.3.2.3) of the request ``message_id``."""
    return command_set(
        (COMMAND_FIELD, us(C_CANCEL_RQ)),
        (MESSAGE_ID_BEING_RESPONDED_TO, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(NO_DATA_SET)),
    )


def n_create_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str | None, *,
                has_dataset: bool = True) -> bytes:
    """An N-CREATE-RQ (PS3.7 10.3.5.1); without ``sop_instance_uid`` the SCP assigns one."""
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(N_CREATE_RQ)),
        (MESSAGE_ID, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT if has_dataset else NO_DATA_SET)),
        *([(AFFECTED_SOP_INSTANCE_UID, uid(sop_instance_uid))] if sop_instance_uid else []),
    )


def n_set_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str) -> bytes:
    """An N-SET-RQ (PS3.7 10.3.3.1); the modification list follows as its dataset."""
    return command_set(
        (REQUESTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(N_SET_RQ)),
        (MESSAGE_ID, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT)),
        (REQUESTED_SOP_INSTANCE_UID, uid(sop_instance_uid)),
    )


def n_get_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str,
             attributes: list[int] | tuple[int, ...] = ()) -> bytes:
    """An N-GET-RQ (PS3.7 10.3.2.1) for the ``attributes`` (tags as ints; none: all)."""
    return command_set(
        (REQUESTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(N_GET_RQ)),
        (MESSAGE_ID, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(NO_DATA_SET)),
        (REQUESTED_SOP_INSTANCE_UID, uid(sop_instance_uid)),
        *([(ATTRIBUTE_IDENTIFIER_LIST, at(attributes))] if attributes else []),
    )


def n_action_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str, action_type_id: int, *,
                has_dataset: bool = True) -> bytes:
    """An N-ACTION-RQ (PS3.7 10.3.4.1); the action information follows as its dataset."""
    return command_set(
        (REQUESTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(N_ACTION_RQ)),
        (MESSAGE_ID, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT if has_dataset else NO_DATA_SET)),
        (REQUESTED_SOP_INSTANCE_UID, uid(sop_instance_uid)),
        (ACTION_TYPE_ID, us(action_type_id)),
    )


def n_event_report_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str, event_type_id: int, *,
                      has_dataset: bool = True) -> bytes:
    """An N-EVENT-REPORT-RQ (PS3.7 10.3.1.1); the event information follows as its dataset."""
    return command_set(
        (AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(N_EVENT_REPORT_RQ)),
        (MESSAGE_ID, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT if has_dataset else NO_DATA_SET)),
        (AFFECTED_SOP_INSTANCE_UID, uid(sop_instance_uid)),
        (EVENT_TYPE_ID, us(event_type_id)),
    )


def n_delete_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str) -> bytes:
    """An N-DELETE-RQ (PS3.7 10.3.6.1)."""
    return command_set(
        (REQUESTED_SOP_CLASS_UID, uid(sop_class_uid)),
        (COMMAND_FIELD, us(N_DELETE_RQ)),
        (MESSAGE_ID, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(NO_DATA_SET)),
        (REQUESTED_SOP_INSTANCE_UID, uid(sop_instance_uid)),
    )


def n_rsp(command_field: int, message_id: int, sop_class_uid: str, sop_instance_uid: str | None,
          status: int, *, has_dataset: bool = False, type_id: int | None = None, comment: str = "",
          offending: list[int] | tuple[int, ...] = (), error_id: int | None = None,
          attributes: list[int] | tuple[int, ...] = ()) -> bytes:
    """The response ``command_field`` to a normalized request (PS3.7 10.3.1.2–10.3.6.2).

    ``type_id`` is the Event Type ID of an N-EVENT-REPORT-RSP or the Action Type ID of an
    N-ACTION-RSP; ``offending`` the Offending Element tags, ``error_id`` the Error ID of a
    failure (PS3.7 C.4), ``attributes`` the Attribute Identifier List of an N-GET-RSP or
    N-SET-RSP warning. The Affected SOP Class and Instance UIDs echo the request's; one no UI
    element can hold is left out."""
    type_element = {N_EVENT_REPORT_RSP: EVENT_TYPE_ID, N_ACTION_RSP: ACTION_TYPE_ID}.get(command_field)
    elements = [
        *_echoed(AFFECTED_SOP_CLASS_UID, sop_class_uid),
        (COMMAND_FIELD, us(command_field)),
        (MESSAGE_ID_BEING_RESPONDED_TO, us(message_id)),
        (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT if has_dataset else NO_DATA_SET)),
        (STATUS, us(status)),
        *([(OFFENDING_ELEMENT, at(offending))] if offending else []),
        *_comment(comment),
        *([(ERROR_ID, us(error_id))] if error_id is not None else []),
        *(_echoed(AFFECTED_SOP_INSTANCE_UID, sop_instance_uid) if sop_instance_uid else []),
        *([(type_element, us(type_id))] if type_element is not None and type_id is not None else []),
        *([(ATTRIBUTE_IDENTIFIER_LIST, at(attributes))] if attributes else []),
    ]
    return command_set(*sorted(elements, key=lambda item: item[0]))


def command_set(*elements: tuple[int, bytes]) -> bytes:
    """The elements (element number, encoded value) of group 0000, in the given order
    (ascending), after their Command Group Length."""
    body = b"".join(struct.pack("<HHI", 0x0000, number, len(value)) + value
                    for number, value in elements)
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(body)) + body


def us(value: int) -> bytes:
    """An US value."""
    return struct.pack("<H", value)


def at(tags: list[int] | tuple[int, ...]) -> bytes:
    """An AT value of one or more tags (PS3.5 6.2: group, then element, each US)."""
    return b"".join(struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in tags)


def ae(value: str) -> bytes:
    """An AE title value, padded with a space to an even length."""
    raw = value.strip().encode("ascii")
    return raw + b" " if len(raw) % 2 else raw


def uid(value: str) -> bytes:
    """A UI value, padded to even length with NUL (PS3.5 6.2)."""
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw
