"""A Query as a QIDO-RS request (PS3.18 10.6.1): resource, match keys, includefield,
and never a patient name unless the settings opt in."""

from __future__ import annotations

import pytest

from pacskit.errors import QueryError
from pacskit.privacy import PrivacyPolicy
from pacskit.query import Query
from pacskit.web.client import WebNode, _query_string, qido_request

WITHHELD = PrivacyPolicy(allow_patient_names=False)
ALLOWED = PrivacyPolicy(allow_patient_names=True)


@pytest.mark.parametrize("query, resource, params", [
    (Query.build("study", patient_id="P1"), "studies", {"PatientID": "P1"}),
    (Query.build("series", study_uid="1.2"), "studies/1.2/series", {}),
    (Query.build("series", study_uid="1.2\\1.3"), "series", {"StudyInstanceUID": "1.2,1.3"}),
    (Query.build("study", study_uid="1.2, 1.3"), "studies", {"StudyInstanceUID": "1.2,1.3"}),
    (Query.build("image", study_uid="1.2", series_uid="1.2.3"), "studies/1.2/series/1.2.3/instances", {}),
    (Query.build("image", series_uid="1.2.3"), "instances", {"SeriesInstanceUID": "1.2.3"}),
    (Query.build("patient", patient_id="P*"), "studies", {"PatientID": "P*"}),
    (Query.build("study", date="20240101-20240131", limit=5), "studies",
     {"StudyDate": "20240101-20240131", "limit": "5"}),
])
def test_resource_and_match_keys(query, resource, params):
    got_resource, got = qido_request(query, WITHHELD)
    assert got_resource == resource
    assert {k: v for k, v in got.items() if k != "includefield"} == params


@pytest.mark.parametrize("level", ["patient", "study", "series", "image"])
def test_names_are_neither_matched_nor_included(level):
    query = Query.build(level, keys=["PatientName", "PatientBirthDate"]) if level != "image" else Query.build(level)
    _, params = qido_request(query, WITHHELD)
    assert "PatientName" not in " ".join([*params, *params.values()])
    with pytest.raises(QueryError):
        qido_request(Query.build("study", keys=["PatientName=DOE*"]), WITHHELD)


def test_names_when_the_settings_allow_them():
    _, params = qido_request(Query.build("study", keys=["PatientName=DOE*"]), ALLOWED)
    assert params["PatientName"] == "DOE*"


def test_wildcards_stay_literal_and_the_rest_is_encoded():
    assert _query_string({"PatientID": "A B*?", "StudyInstanceUID": "1.2\\1.3", "includefield": "a,b"}) == \
        "PatientID=A%20B*?&StudyInstanceUID=1.2%5C1.3&includefield=a,b"


def test_urls_and_credentials():
    node = WebNode.parse("HTTP://alice:s3cret@Example.org:8042/dicom-web/")
    assert (node.url, node.username, node.password) == ("http://example.org:8042/dicom-web", "alice", "s3cret")
    assert "s3cret" not in node.label


def test_keys_inside_a_sequence_are_attribute_paths():
    query = Query.build("study", keys=["ProcedureCodeSequence.CodeValue=XYZ",
                                       "(0008,1032)[0].CodingSchemeDesignator"])
    _, params = qido_request(query, WITHHELD)
    assert params["ProcedureCodeSequence.CodeValue"] == "XYZ"
    assert "ProcedureCodeSequence.CodingSchemeDesignator" in params["includefield"].split(",")
