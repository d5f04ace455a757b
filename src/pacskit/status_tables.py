"""DIMSE status codes: their categories (PS3.7 C.1) and meanings (PS3.7 Annex C, and the
service classes' own codes: Storage PS3.4 B.2.3, Query/Retrieve C.4.1.1.4, C.4.2.1.5,
C.4.3.1.4), as pynetdicom 3.0.4's ``pynetdicom.status`` lists them, word for word.

pacskit's own copy, so that reading a status does not import pynetdicom (whose package
import loads its application entity and every service class, docs/start-up.md);
``tests/unit/test_status_tables.py`` compares every code 0x0000-0xFFFF with pynetdicom's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SUCCESS = "Success"
FAILURE = "Failure"
WARNING = "Warning"
CANCEL = "Cancel"
PENDING = "Pending"
UNKNOWN = "Unknown"

Meaning = tuple[str, str]


@dataclass(frozen=True)
class StatusTable:
    """A service's status codes: single codes, then ranges (first, last, meaning)."""

    codes: Mapping[int, Meaning]
    ranges: tuple[tuple[int, int, Meaning], ...] = ()

    def get(self, code: int) -> Meaning | None:
        meaning = self.codes.get(code)
        if meaning is not None:
            return meaning
        return next((found for first, last, found in self.ranges if first <= code <= last), None)

    def __contains__(self, code: int) -> bool:
        return self.get(code) is not None


_GENERAL = {
    0x0000: (SUCCESS, ""),
    0x0105: (FAILURE, "No Such Attribute"),
    0x0106: (FAILURE, "Invalid Attribute Value"),
    0x0107: (WARNING, "Attribute List Error"),
    0x0110: (FAILURE, "Processing Failure"),
    0x0111: (FAILURE, "Duplication SOP Instance"),
    0x0112: (FAILURE, "No Such SOP Instance"),
    0x0113: (FAILURE, "No Such Event Type"),
    0x0114: (FAILURE, "No Such Argument"),
    0x0115: (FAILURE, "Invalid Argument Value"),
    0x0116: (WARNING, "Attribute Value Out of Range"),
    0x0117: (FAILURE, "Invalid Object Instance"),
    0x0118: (FAILURE, "No Such SOP Class"),
    0x0119: (FAILURE, "Class-Instance Conflict"),
    0x0120: (FAILURE, "Missing Attribute"),
    0x0121: (FAILURE, "Missing Attribute Value"),
    0x0122: (FAILURE, "Refused: SOP Class Not Supported"),
    0x0123: (FAILURE, "No Such Action"),
    0x0124: (FAILURE, "Refused: Not Authorised"),
    0x0210: (FAILURE, "Duplicate Invocation"),
    0x0211: (FAILURE, "Unrecognised Operation"),
    0x0212: (FAILURE, "Mistyped Argument"),
    0x0213: (FAILURE, "Resource Limitation"),
    0xFE00: (CANCEL, ""),
}
_UNABLE_TO_PROCESS = ((0xC000, 0xCFFF, (FAILURE, "Unable to Process")),)
_RETRIEVE = {
    0xA701: (FAILURE, "Refused: Out of resources, unable to calculate number of matches"),
    0xA702: (FAILURE, "Refused: Out of resources, unable to perform sub-operations"),
    0xA900: (FAILURE, "Identifier does not match SOP class"),
    0xAA00: (FAILURE, "None of the frames requested were found in the SOP instance"),
    0xAA01: (FAILURE, "Unable to create new object for this SOP class"),
    0xAA02: (FAILURE, "Unable to extract frames"),
    0xAA03: (FAILURE, "Time-based request received for a non-time-based original SOP Instance"),
    0xAA04: (FAILURE, "Invalid request"),
    0xFF00: (PENDING, "Sub-operations are continuing"),
}

GENERAL = StatusTable(_GENERAL)
"""PS3.7 Annex C: the codes of every service."""
VERIFICATION = GENERAL
"""PS3.4 A.4.2: the Verification service has no codes of its own."""
STORAGE = StatusTable({
    0xB000: (WARNING, "Coercion of Data Elements"),
    0xB007: (WARNING, "Data Set Does Not Match SOP Class"),
    0xB006: (WARNING, "Element Discarded"),
    **_GENERAL,
}, ((0xA700, 0xA7FF, (FAILURE, "Refused: Out of Resources")),
    (0xA900, 0xA9FF, (FAILURE, "Data Set Does Not Match SOP Class")),
    (0xC000, 0xCFFF, (FAILURE, "Cannot Understand"))))
"""PS3.4 B.2.3."""
QR_FIND = StatusTable({
    0xA700: (FAILURE, "Refused: Out of Resources"),
    0xA710: (FAILURE, "Invalid Prior Record Key"),
    0xA900: (FAILURE, "Identifier Does Not Match SOP Class"),
    0xB001: (WARNING, "Matching reached response limit, subsequent request may return additional matches"),
    0xFF00: (PENDING, "Matches are continuing, current match supplied"),
    0xFF01: (PENDING, "Matches are continuing, warning"),
    **_GENERAL,
}, _UNABLE_TO_PROCESS)
"""PS3.4 C.4.1.1.4."""
QR_MOVE = StatusTable({
    **_RETRIEVE,
    0xA801: (FAILURE, "Move destination unknown"),
    0xB000: (WARNING, "Sub-operations completed, one or more failures"),
    **_GENERAL,
}, _UNABLE_TO_PROCESS)
"""PS3.4 C.4.2.1.5."""
QR_GET = StatusTable({
    **_RETRIEVE,
    0xB000: (WARNING, "Sub-operations complete, one or more failures or warnings"),
    **_GENERAL,
}, _UNABLE_TO_PROCESS)
"""PS3.4 C.4.3.1.4."""

_FAILURES = frozenset((0x0105, 0x0106, 0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115, 0x0117, 0x0118, 0x0119,
                       0x0120, 0x0121, 0x0122, 0x0123, 0x0124, 0x0210, 0x0211, 0x0212, 0x0213))


def category(code: int) -> str:
    """The category of a status code (PS3.7 C.1): Success, Pending, Cancel, Failure,
    Warning, or Unknown for a code no range gives one."""
    if code < 0:
        raise ValueError("a status code is not negative")
    if code == 0x0000:
        return SUCCESS
    if code in (0xFF00, 0xFF01):
        return PENDING
    if code == 0xFE00:
        return CANCEL
    if code in _FAILURES or 0xA000 <= code < 0xB000 or 0xC000 <= code < 0xD000:
        return FAILURE
    if code in (0x0001, 0x0107, 0x0116) or 0xB000 <= code < 0xC000:
        return WARNING
    return UNKNOWN
