"""DIMSE status values (PS3.7 Annex C) turned into outcomes, in one place."""

from __future__ import annotations

from enum import Enum

from pacskit import status_tables
from pacskit.errors import DimseFailure, MoveDestinationUnknown
from pacskit.nodes import Node

MOVE_DESTINATION_UNKNOWN = 0xA801
_MEANINGS = (status_tables.QR_MOVE, status_tables.STORAGE, status_tables.GENERAL)


class Outcome(str, Enum):
    """The category of a DIMSE status (PS3.7 C.1)."""

    SUCCESS = "success"
    PENDING = "pending"
    WARNING = "warning"
    CANCEL = "cancel"
    FAILURE = "failure"


class DimseStatus(Exception):
    """Raised by a service handler: the request ends with ``status`` (and ``comment``);
    a normalized response also carries ``offending`` (Offending Element tags) and
    ``error_id`` (Error ID), PS3.7 C.4."""

    def __init__(self, status: int, comment: str = "", *, offending: tuple[int, ...] = (),
                 error_id: int | None = None) -> None:
        super().__init__(f"0x{status:04X} {comment}".strip())
        self.status = status
        self.comment = comment
        self.offending = offending
        self.error_id = error_id


def outcome_of(status: int) -> Outcome:
    """The category of ``status``; unknown codes count as failures."""
    category = status_tables.category(status)
    try:
        return Outcome(category.lower())
    except ValueError:
        return Outcome.FAILURE


def describe(status: int) -> str:
    """``0xA801 (Move destination unknown)`` style text for a status."""
    meaning = next((found[1] for table in _MEANINGS if (found := table.get(status)) is not None), "")
    return f"0x{status:04X}" + (f" ({meaning})" if meaning else "")


def describe_store(status: int) -> str:
    """``0xA900 (Data Set Does Not Match SOP Class)`` style text for the status of a
    C-STORE, or a STOW-RS Failure or Warning Reason (PS3.4 Annex B, PS3.7 C)."""
    meaning = (status_tables.STORAGE.get(status) or ("", ""))[1]
    return f"0x{status:04X}" + (f" ({meaning})" if meaning else "")


def check_status(status: int, comment: str, service: str, node: Node) -> int:
    """``status``, unless it is a failure.

    Raises:
        MoveDestinationUnknown: status 0xA801.
        DimseFailure: any other failure status.
    """
    if outcome_of(status) is Outcome.FAILURE:
        comment = comment.strip()
        text = f"{service} failed at {node.label}: {describe(status)}"
        if comment:
            text += f": {comment}"
        if status == MOVE_DESTINATION_UNKNOWN:
            raise MoveDestinationUnknown(text, status=status, comment=comment)
        raise DimseFailure(text, status=status, comment=comment)
    return status
