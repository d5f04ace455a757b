"""DIMSE command sets in words: the command's name (PS3.7 E.1), the status's category
and meaning (PS3.7 Annex C, and the service classes' tables of PS3.4:
:mod:`pacskit.status_tables`), and the one line a log shows of a message."""

from __future__ import annotations

import struct
from collections.abc import Mapping

from pacskit import status_tables

AFFECTED_SOP_CLASS_UID = 0x0002
REQUESTED_SOP_CLASS_UID = 0x0003
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
MESSAGE_ID_BEING_RESPONDED_TO = 0x0120
MOVE_DESTINATION = 0x0600
STATUS = 0x0900
ERROR_COMMENT = 0x0902
AFFECTED_SOP_INSTANCE_UID = 0x1000
REQUESTED_SOP_INSTANCE_UID = 0x1001
EVENT_TYPE_ID = 0x1002
ACTION_TYPE_ID = 0x1008
SUBOPERATIONS = ((0x1020, "remaining"), (0x1021, "completed"), (0x1022, "failed"),
                 (0x1023, "warning"))
RESPONSE_BIT = 0x8000
C_CANCEL_RQ = 0x0FFF

COMMANDS = {
    0x0001: "C-STORE",
    0x0010: "C-GET",
    0x0020: "C-FIND",
    0x0021: "C-MOVE",
    0x0030: "C-ECHO",
    0x0100: "N-EVENT-REPORT",
    0x0110: "N-GET",
    0x0120: "N-SET",
    0x0130: "N-ACTION",
    0x0140: "N-CREATE",
    0x0150: "N-DELETE",
}
"""Command Field values of the requests (PS3.7 E.1); a response has bit 15 set too."""

_STATUS_TABLES = {
    0x0001: status_tables.STORAGE,
    0x0010: status_tables.QR_GET,
    0x0020: status_tables.QR_FIND,
    0x0021: status_tables.QR_MOVE,
    0x0030: status_tables.VERIFICATION,
}
_SHORT_NAMES = ((" Query/Retrieve Information Model", " Q/R"),)
_MAX_TEXT = 64


def command_name(field: int | None) -> str:
    """``C-FIND-RQ`` for 0x0020, ``C-FIND-RSP`` for 0x8020, ``C-CANCEL-RQ`` for 0x0FFF."""
    if field is None:
        return "message without a Command Field"
    if field == C_CANCEL_RQ:
        return "C-CANCEL-RQ"
    name = COMMANDS.get(field & ~RESPONSE_BIT)
    if name is None:
        return f"unknown command 0x{field:04X}"
    return f"{name}-RSP" if field & RESPONSE_BIT else f"{name}-RQ"


def status_text(status: int, field: int | None = None) -> str:
    """``Success``, ``Pending 0xFF00``, or ``Failure 0xA700 (Refused: Out of Resources)``:
    the category of ``status`` and, unless it is a success or pending, its meaning in the
    table of the service whose response it is (``field``, the Command Field)."""
    table = _STATUS_TABLES.get((field or 0) & ~RESPONSE_BIT, status_tables.GENERAL)
    category, meaning = table.get(status) or (status_tables.category(status), "")
    if status == 0x0000:
        return "Success"
    if category == "Unknown":
        return f"Unknown status 0x{status:04X}"
    text = f"{category} 0x{status:04X}"
    return f"{text} ({meaning})" if meaning and category != "Pending" else text


def sop_class_name(uid: str, *, short: bool = False) -> str:
    """The name pydicom's UID dictionary gives ``uid`` (the UID itself if it has none);
    ``short`` writes Q/R for Query/Retrieve Information Model."""
    name = _uid_name(uid) if uid else ""
    if short:
        for long, abbreviation in _SHORT_NAMES:
            name = name.replace(long, abbreviation)
    return printable(name, 100)


def _uid_name(uid: str) -> str:
    from pydicom.uid import UID

    return UID(uid).name


def load_uid_names() -> None:
    """Import pydicom's UID dictionary, which :func:`sop_class_name` reads (about 80 ms the
    first time: an association that logs no names never loads it)."""
    import pydicom.uid  # noqa: F401


def error_name(exc: BaseException) -> str:
    """``ValueError``, ``zlib.error``: what went wrong, without the exception's text."""
    kind = type(exc)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def summary(command: Mapping[int, bytes], context_id: int) -> str:
    """What a log line says of a message: ``C-FIND-RQ (ID 3, context 1, Study Root Q/R -
    FIND)``, ``C-STORE-RSP (ID 7): Success``, ``C-GET-RSP (ID 2): Pending 0xFF00,
    sub-operations 3 remaining, 1 completed, 0 failed, 0 warning``."""
    field = us_value(command, COMMAND_FIELD)
    name = command_name(field)
    if field is not None and field & RESPONSE_BIT:
        return f"{name} (ID {_number(command, MESSAGE_ID_BEING_RESPONDED_TO)}): {_response_text(command, field)}"
    if field == C_CANCEL_RQ:
        return f"{name} (of ID {_number(command, MESSAGE_ID_BEING_RESPONDED_TO)}, context {context_id})"
    details = [f"ID {_number(command, MESSAGE_ID)}", f"context {context_id}"]
    sop_class = text_value(command, AFFECTED_SOP_CLASS_UID) or text_value(command, REQUESTED_SOP_CLASS_UID)
    if sop_class:
        details.append(sop_class_name(sop_class, short=True))
    destination = text_value(command, MOVE_DESTINATION)
    if destination:
        details.append(f"to {destination}")
    instance = text_value(command, AFFECTED_SOP_INSTANCE_UID) or text_value(command, REQUESTED_SOP_INSTANCE_UID)
    if instance:
        details.append(f"instance {instance}")
    for element, label in ((EVENT_TYPE_ID, "event type"), (ACTION_TYPE_ID, "action type")):
        value = us_value(command, element)
        if value is not None:
            details.append(f"{label} {value}")
    return f"{name} ({', '.join(details)})"


def _response_text(command: Mapping[int, bytes], field: int) -> str:
    status = us_value(command, STATUS)
    text = status_text(status, field) if status is not None else "no Status"
    counts = [(label, us_value(command, element)) for element, label in SUBOPERATIONS]
    if any(value is not None for _, value in counts):
        text += ", sub-operations " + ", ".join(f"{value} {label}" for label, value in counts
                                                if value is not None)
    comment = text_value(command, ERROR_COMMENT)
    return f"{text}: {comment}" if comment else text


def _number(command: Mapping[int, bytes], element: int) -> str:
    value = us_value(command, element)
    return "?" if value is None else str(value)


def us_value(command: Mapping[int, bytes], element: int) -> int | None:
    """An US element of a command set as an int (None when absent or short)."""
    raw = command.get(element)
    return struct.unpack_from("<H", raw)[0] if raw is not None and len(raw) >= 2 else None


def text_value(command: Mapping[int, bytes], element: int) -> str:
    """A text or UI element of a command set, without its padding, printable."""
    raw = command.get(element)
    if not raw:
        return ""
    return printable(bytes(raw).rstrip(b"\0 ").decode("ascii", "replace"))


def printable(text: str, limit: int = _MAX_TEXT) -> str:
    """``text`` fit for one log line: control characters (a CR or LF a peer sent) as
    ``?``, and cut to ``limit`` characters with ``...``."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."
