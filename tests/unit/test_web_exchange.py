"""The pure pieces both DICOMweb clients share (pacskit.web.exchange): QIDO-RS paging
(PS3.18 8.3.4.1), WADO-RS targets, STOW-RS batches, the errors of HTTP answers and of
transports (a TLS failure is proven over HTTPS in tests/integration/test_async_dicomweb.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydicom import Dataset

from pacskit.errors import (
    AccessDenied,
    AssociationAborted,
    ConnectionRefused,
    NetworkTimeout,
)
from pacskit.query import Level, Query
from pacskit.scan import DicomFile
from pacskit.web import exchange


def test_pages_after_the_first_carry_offset_and_what_is_left_of_the_limit():
    params = {"PatientID": "P1", "limit": "7"}
    assert exchange.search_target("studies", params, 0) == "studies?PatientID=P1&limit=7"
    assert exchange.search_target("studies", params, 5) == "studies?PatientID=P1&limit=2&offset=5"
    assert exchange.search_target("series", {}, 0) == "series"
    assert exchange.search_target("series", {}, 3) == "series?offset=3"


def test_a_search_ends_without_more_on_an_empty_page_or_at_the_limit():
    page = [Dataset()]
    assert exchange.search_done({}, page, more=False, found=1)
    assert not exchange.search_done({}, page, more=True, found=1)
    assert exchange.search_done({}, [], more=True, found=1)
    assert exchange.search_done({"limit": "3"}, page, more=True, found=3)
    assert not exchange.search_done({"limit": "3"}, page, more=True, found=2)


def match(**values: str) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_retrieve_targets_at_each_level_and_the_expected_total():
    series = [match(StudyInstanceUID="1.2", SeriesInstanceUID="1.2.3", NumberOfSeriesRelatedInstances="4"),
              match(StudyInstanceUID="1.2", SeriesInstanceUID="1.2.4", NumberOfSeriesRelatedInstances="2"),
              match(StudyInstanceUID="1.2")]
    targets = exchange.retrieve_targets(Level.SERIES, series)
    assert targets == [("studies/1.2/series/1.2.3", 4), ("studies/1.2/series/1.2.4", 2)]
    assert exchange.expected_total(targets) == 6
    studies = exchange.retrieve_targets(Level.STUDY, [match(StudyInstanceUID="9.8")])
    assert studies == [("studies/9.8", None)] and exchange.expected_total(studies) is None
    search = exchange.retrieve_search(Query.build("patient", patient_id="P1"))
    assert search.level is Level.STUDY and "NumberOfStudyRelatedInstances" in search.return_keys


def file(number: int, size: int) -> DicomFile:
    return DicomFile(Path(f"{number}.dcm"), "1.2.840.10008.5.1.4.1.1.2", f"1.2.3.{number}", "1.2.840.10008.1.2.1",
                     size, 132)


def test_stow_batches_of_at_most_fifty_files_and_64_mib():
    small = [file(i, 1000) for i in range(120)]
    assert [len(b) for b in exchange.stow_batches(small)] == [50, 50, 20]
    large = [file(i, 40 << 20) for i in range(3)]
    assert [len(b) for b in exchange.stow_batches(large)] == [1, 1, 1]


def answer(status: int, body: bytes = b"") -> httpx.Response:
    return httpx.Response(status, content=body, request=httpx.Request("GET", "http://127.0.0.1/dicom-web/studies"))


def test_an_error_answer_says_its_status_and_first_line():
    failure = exchange.http_failure(answer(400, b"bad includefield\nmore"), "QIDO-RS", b"bad includefield\nmore")
    assert str(failure) == "QIDO-RS: HTTP 400 Bad Request: bad includefield" and failure.status == 400
    with pytest.raises(AccessDenied, match="HTTP 401 \\(credentials needed\\)"):
        exchange.refuse_denied(answer(401), "web")
    exchange.refuse_denied(answer(404), "web")


@pytest.mark.parametrize(("error", "kind", "text"), [
    (httpx.ConnectTimeout("slow"), NetworkTimeout, "no connection within"),
    (httpx.ReadTimeout("slow"), NetworkTimeout, "did not answer within"),
    (httpx.ConnectError("[Errno 111] Connection refused"), ConnectionRefused, "cannot connect to web"),
    (httpx.RemoteProtocolError("peer closed connection"), AssociationAborted, "closed the connection"),
])
def test_transport_errors_become_pacskit_errors(error, kind, text):
    failure = exchange.transport_failure(error, "web")
    assert isinstance(failure, kind) and text in str(failure)

