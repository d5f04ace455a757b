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
from pacskit.retrieve_plan import (
    Plan,
    Whole,
    level_search,
    wado_rs_resources,
    wado_uri_instances,
    web_fetch_level,
)
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


def test_a_plan_as_wado_rs_resources_and_wado_uri_instances():
    plan = Plan(wholes=[Whole(Level.SERIES, {"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3"}, 4),
                        Whole(Level.STUDY, {"StudyInstanceUID": "9.8"}, None)],
                instances=[("1.2", "1.2.5", "1.2.5.1"), ("1.2", "1.2.5", "1.2.5.2"), ("1.2", "1.2.6", "1.2.6.1")],
                whole_series={"1.2.6"})
    assert wado_rs_resources(plan) == [
        ("studies/1.2/series/1.2.3", 4), ("studies/9.8", None), ("studies/1.2/series/1.2.5/instances/1.2.5.1", 1),
        ("studies/1.2/series/1.2.5/instances/1.2.5.2", 1), ("studies/1.2/series/1.2.6", 1)]
    assert plan.expected is None
    one = Plan(wholes=[Whole(Level.IMAGE, {"StudyInstanceUID": "1", "SeriesInstanceUID": "2",
                                           "SOPInstanceUID": "3"}, 1)], instances=[("4", "5", "6")])
    assert wado_uri_instances(one) == [("4", "5", "6"), ("1", "2", "3")]


def test_dicomweb_fetches_a_patient_as_its_studies_and_wado_uri_each_instance():
    assert web_fetch_level(Level.PATIENT, False) is Level.STUDY
    assert web_fetch_level(Level.SERIES, False) is Level.SERIES
    assert all(web_fetch_level(level, True) is Level.IMAGE for level in Level)
    search = level_search(Query.build("patient", patient_id="P1"), web_fetch_level(Level.PATIENT, False))
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

