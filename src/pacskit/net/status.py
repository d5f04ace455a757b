"""DIMSE status values (PS3.7 Annex C) turned into outcomes, in one place."""

from __future__ import annotations

from enum import Enum

from pydicom import Dataset
from pynetdicom.association import Association
from pynetdicom.status import (
    QR_MOVE_SERVICE_CLASS_STATUS,
    STORAGE_SERVICE_CLASS_STATUS,
    code_to_category,
)

from pacskit.errors import (
    AssociationAborted,
    DimseFailure,
    MoveDestinationUnknown,
    NetworkTimeout,
)
from pacskit.nodes import Node

MOVE_DESTINATION_UNKNOWN = 0xA801
_MEANINGS = {**STORAGE_SERVICE_CLASS_STATUS, **QR_MOVE_SERVICE_CLASS_STATUS}


class Outcome(str, Enum):
    """The category of a DIMSE status (PS3.7 C.1)."""

    SUCCESS = "success"
    PENDING = "pending"
    WARNING = "warning"
    CANCEL = "cancel"
    FAILURE = "failure"


def outcome_of(status: int) -> Outcome:
    """The category of ``status``; unknown codes count as failures."""
    category = code_to_category(status)
    try:
        return Outcome(category.lower())
    except ValueError:
        return Outcome.FAILURE


def describe(status: int) -> str:
    """``0xA801 (Move destination unknown)`` style text for a status."""
    meaning = _MEANINGS.get(status, ("", ""))[1]
    return f"0x{status:04X}" + (f" ({meaning})" if meaning else "")


def describe_store(status: int) -> str:
    """``0xA900 (Data Set Does Not Match SOP Class)`` style text for the status of a
    C-STORE, or a STOW-RS Failure or Warning Reason (PS3.4 Annex B, PS3.7 C)."""
    meaning = STORAGE_SERVICE_CLASS_STATUS.get(status, ("", ""))[1]
    return f"0x{status:04X}" + (f" ({meaning})" if meaning else "")


def check_response(assoc: Association, response: Dataset | None, service: str, node: Node) -> int:
    """The status of a DIMSE response, raising for failures and missing responses.

    pynetdicom signals a DIMSE timeout or an abort with an empty Dataset; this is where
    that, and every failure status, becomes an exception.

    Raises:
        AssociationAborted: the association was aborted before the response came.
        NetworkTimeout: no response within the DIMSE timeout.
        MoveDestinationUnknown: status 0xA801.
        DimseFailure: any other failure status.
    """
    if response is None or "Status" not in response:
        if assoc.is_aborted or not assoc.is_established:
            raise AssociationAborted(f"{node.label} aborted the association during {service}")
        raise NetworkTimeout(
            f"no {service} response from {node.label} within {assoc.dimse_timeout:g} s"
        )
    return check_status(int(response.Status), str(response.get("ErrorComment", "") or ""),
                        service, node)


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
