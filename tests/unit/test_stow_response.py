"""Each file's outcome read from a STOW-RS response (PS3.18 10.5.3), whatever the server
puts in it."""

from __future__ import annotations

from pathlib import Path

from pydicom import Dataset

from pacskit.net.status import Outcome
from pacskit.scan import DicomFile
from pacskit.web.client import _tally_stow


def file(uid: str) -> DicomFile:
    return DicomFile(Path(f"{uid}.dcm"), "1.2.840.10008.5.1.4.1.1.2", uid, "1.2.840.10008.1.2.1", 10, 132)


def item(uid: str | None = None, **values: int) -> Dataset:
    ds = Dataset()
    if uid is not None:
        ds.ReferencedSOPInstanceUID = uid
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def outcomes(answer: Dataset, *uids: str) -> dict[str, Outcome]:
    seen = []
    _tally_stow([file(u) for u in uids], answer, seen.append)
    return {o.file.sop_instance_uid: o.outcome for o in seen}


def test_stored_warned_failed_and_missing():
    answer = Dataset()
    answer.ReferencedSOPSequence = [item("1.1"), item("1.2", WarningReason=0xB000)]
    answer.FailedSOPSequence = [item("1.3", FailureReason=0xA700)]
    assert outcomes(answer, "1.1", "1.2", "1.3", "1.4") == {
        "1.1": Outcome.SUCCESS, "1.2": Outcome.WARNING, "1.3": Outcome.FAILURE, "1.4": Outcome.FAILURE}


def test_a_failure_is_a_failure_whatever_its_reason_says():
    answer = Dataset()
    answer.FailedSOPSequence = [item("1.1", FailureReason=0), item("1.2"), item(None, FailureReason=0xC000)]
    assert outcomes(answer, "1.1", "1.2") == {"1.1": Outcome.FAILURE, "1.2": Outcome.FAILURE}


def test_an_empty_or_odd_response_stores_nothing():
    answer = Dataset()
    answer.ReferencedSOPSequence = [item(None)]
    assert set(outcomes(answer, "1.1").values()) == {Outcome.FAILURE}
    assert set(outcomes(Dataset(), "1.1").values()) == {Outcome.FAILURE}
