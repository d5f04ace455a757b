"""Each file's outcome read from a STOW-RS response (PS3.18 10.5.3), whatever the server
puts in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import Dataset

from pacskit.net.status import Outcome
from pacskit.scan import DicomFile
from pacskit.web.stow_outcome import error_reason, tally_stow


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
    tally_stow([file(u) for u in uids], answer, seen.append)
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


def reasons(answer: Dataset, *uids: str) -> dict[str, str]:
    seen = []
    tally_stow([file(u) for u in uids], answer, seen.append, "HTTP 400 Bad Request")
    return {o.file.sop_instance_uid: o.reason for o in seen}


def test_a_failure_says_what_its_reason_means_with_the_servers_comment():
    answer = Dataset()
    answer.FailedSOPSequence = [item("1.1", FailureReason=0xA900), item("1.2", FailureReason=0xC000)]
    answer.FailedSOPSequence[1].ErrorComment = "the dataset has no Study or Series Instance UID"
    assert reasons(answer, "1.1", "1.2", "1.3") == {
        "1.1": "refused: 0xA900 (Data Set Does Not Match SOP Class)",
        "1.2": "refused: 0xC000 (Cannot Understand): the dataset has no Study or Series Instance UID",
        "1.3": "not in the server's STOW-RS response (HTTP 400 Bad Request)"}


def test_failures_naming_no_instance_go_in_order_to_the_files_named_nowhere():
    answer = Dataset()
    answer.ReferencedSOPSequence = [item("1.2")]
    answer.FailedSOPSequence = [item(None, FailureReason=0xC000), item(None, FailureReason=0xA700)]
    assert reasons(answer, "1.1", "1.2", "1.3") == {
        "1.1": "refused: 0xC000 (Cannot Understand)", "1.2": "", "1.3": "refused: 0xA700 (Refused: Out of Resources)"}
    answer.FailedSOPSequence = [item(None, FailureReason=0xC000)]
    assert reasons(answer, "1.1", "1.2", "1.3")["1.1"].startswith("not in the server's STOW-RS response")


@pytest.mark.parametrize(("body", "content_type", "reason"), [
    (b'{\n  "HttpError" : "Bad Request",\n  "HttpStatus" : 400,\n  "Message" : "Bad request",\n'
     b'  "Details" : "Cannot parse an invalid DICOM file (size: 300 bytes)",\n  "OrthancStatus" : 8\n}',
     "", "Bad request: Cannot parse an invalid DICOM file (size: 300 bytes)"),
    (b'{"error": {"code": 400, "message": "invalid multipart"}}', "application/json", "invalid multipart"),
    (b'{"errors": [{"detail": "study mismatch"}]}', "application/json", "study mismatch"),
    (b'{"00000902": {"vr": "LO", "Value": ["no such study"]}}', "application/dicom+json", "no such study"),
    (b'<?xml version="1.0"?>\n<NativeDicomModel><DicomAttribute tag="00000902" vr="LO">'
     b'<Value number="1">Bad &amp; broken</Value></DicomAttribute></NativeDicomModel>',
     "application/dicom+xml", "Bad & broken"),
    (b"<html><head><title>413 Too Large</title><style>p{}</style></head><body><h1>Request Entity Too Large"
     b"</h1>\n<p>nginx</p></body></html>", "text/html", "Request Entity Too Large nginx"),
    (b"malformed multipart body: no multipart boundary delimiter found\nsecond line", "text/plain",
     "malformed multipart body: no multipart boundary delimiter found second line"),
    (b"   ", "text/plain", ""),
    (b"[" * 100_000, "application/json", "[" * 199 + "…"),
])
def test_an_error_body_becomes_one_readable_line(body, content_type, reason):
    assert error_reason(body, content_type) == reason
