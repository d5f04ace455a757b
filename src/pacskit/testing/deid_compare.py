"""What a de-identifier did to each attribute of the marker corpus
(:mod:`pacskit.testing.deid_corpus`), in words that two implementations can be compared
by: ``removed``, ``emptied``, ``kept``, ``replaced``."""

from __future__ import annotations

from pydicom import Dataset

from pacskit.testing.deid_corpus import Marker


def outcome(before: Dataset, after: Dataset, marker: Marker) -> str:
    """What happened to the top-level attribute of ``marker``."""
    if marker.tag not in after:
        return "removed"
    old, new = before[marker.tag], after[marker.tag]
    if new.VR == "SQ" or old.VR == "SQ":
        if not new.value:
            return "emptied"
        return "kept" if new.value == old.value else "replaced"
    if new.value in (None, "", b"") or new.is_empty:
        return "emptied"
    return "kept" if new.value == old.value else "replaced"


def outcomes(before: Dataset, after: Dataset, markers: list[Marker]) -> dict[str, str]:
    """:func:`outcome` of every top-level Table E.1-1 row, by its tag text."""
    return {m.row: outcome(before, after, m) for m in markers if m.depth == 0 and m.row != "private"}
