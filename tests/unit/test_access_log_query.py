"""The access log withholds the value of every query parameter that names a person name
attribute — by keyword, by tag, at the end of an attribute path — and keeps the rest as
the client sent it."""

from __future__ import annotations

import pytest

from pacskit.web.access_log import names_a_person, withhold_names


@pytest.mark.parametrize(("query", "logged"), [
    ("PatientName=DOE*&limit=10", "PatientName=(withheld)&limit=10"),
    ("00100010=DOE%5EJ*", "00100010=(withheld)"),
    ("OtherPatientNames=X&PatientBirthName=Y&PatientMotherBirthName=Z",
     "OtherPatientNames=(withheld)&PatientBirthName=(withheld)&PatientMotherBirthName=(withheld)"),
    ("ReferringPhysicianName=WHO&StudyDate=20240101-", "ReferringPhysicianName=(withheld)&StudyDate=20240101-"),
    ("00081120.00100010=DOE", "00081120.00100010=(withheld)"),
    ("Patient%4eame=DOE", "Patient%4eame=(withheld)"),
    ("includefield=PatientName&includefield=00100010", "includefield=PatientName&includefield=00100010"),
    ("PatientID=NAME123&fuzzymatching=true", "PatientID=NAME123&fuzzymatching=true"),
    ("PatientName", "PatientName"),
    ("", ""),
])
def test_names_withheld_in_query_strings(query, logged):
    assert withhold_names(query) == logged


def test_what_names_a_person():
    assert names_a_person("PatientName") and names_a_person("00080090") and names_a_person("0040A123")
    assert not names_a_person("PatientID") and not names_a_person("limit") and not names_a_person("zzzzzzzz")
