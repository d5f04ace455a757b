"""Typed results and typed queries: the conversion of answers, and of filters."""

import json
from datetime import date, time

import pytest
from pydicom import Dataset

from pacskit.errors import QueryError
from pacskit.level_queries import InstanceQuery, PatientQuery, SeriesQuery, StudyQuery
from pacskit.models import RetrieveResult
from pacskit.privacy import PrivacyPolicy
from pacskit.query import LEVEL_KEYS, Level
from pacskit.results import (
    RESULTS,
    InstanceResult,
    PatientResult,
    SeriesResult,
    StudyResult,
    parse_date,
    parse_time,
)

ALLOWED = PrivacyPolicy(allow_patient_names=True)


def study_answer() -> Dataset:
    ds = Dataset()
    ds.PatientID = "P-1"
    ds.PatientName = "Doe^John"
    ds.PatientBirthDate = "19700215"
    ds.StudyInstanceUID = "1.2.3"
    ds.StudyDate = "20240131"
    ds.StudyTime = "101530.25"
    ds.ModalitiesInStudy = ["CT", "MR"]
    ds.NumberOfStudyRelatedSeries = "3"
    ds.NumberOfStudyRelatedInstances = 12
    ds.StudyDescription = "Chest"
    return ds


def test_study_answer_becomes_typed_fields():
    study = StudyResult.from_dataset(study_answer())
    assert study.study_instance_uid == "1.2.3"
    assert study.study_date == date(2024, 1, 31)
    assert study.study_time == time(10, 15, 30, 250000)
    assert study.patient_birth_date == date(1970, 2, 15)
    assert study.modalities_in_study == ["CT", "MR"]
    assert study.number_of_study_related_series == 3
    assert study.number_of_study_related_instances == 12
    assert study.study_description == "Chest"


def test_a_single_modality_is_a_list_of_one():
    ds = study_answer()
    ds.ModalitiesInStudy = "CT"
    assert StudyResult.from_dataset(ds).modalities_in_study == ["CT"]


def test_names_are_withheld_by_default_and_absent_from_json():
    study = StudyResult.from_dataset(study_answer())
    assert study.patient_name is None
    dumped = json.loads(study.model_dump_json())
    assert "patient_name" not in dumped
    assert "Doe" not in study.model_dump_json()
    assert dumped["study_date"] == "2024-01-31"
    assert dumped["modalities_in_study"] == ["CT", "MR"]


def test_names_are_kept_when_allowed():
    study = StudyResult.from_dataset(study_answer(), ALLOWED)
    assert study.patient_name == "Doe^John"
    assert json.loads(study.model_dump_json())["patient_name"] == "Doe^John"


def test_the_answer_stays_reachable_but_out_of_the_json():
    answer = study_answer()
    study = StudyResult.from_dataset(answer)
    assert study.dataset is answer
    assert study.to_dicom_json()["0020000D"] == {"vr": "UI", "Value": ["1.2.3"]}
    assert "dataset" not in study.model_dump()


@pytest.mark.parametrize(("text", "expected"), [
    ("20240229", date(2024, 2, 29)), ("2024.02.29", date(2024, 2, 29)),
    ("20230229", None), ("2024", None), ("", None), ("garbage!", None),
])
def test_dates(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("10", time(10)), ("1015", time(10, 15)), ("101530", time(10, 15, 30)),
    ("101530.5", time(10, 15, 30, 500000)), ("10:15:30", time(10, 15, 30)),
    ("235960", time(23, 59, 59)), ("2560", None), ("ab", None),
])
def test_times(text, expected):
    assert parse_time(text) == expected


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_malformed_values_are_none_and_left_in_the_dataset():
    ds = Dataset()
    ds.SeriesInstanceUID = "1.2"
    ds.SeriesDate = "yesterday"
    ds.add_new(0x00200011, "IS", None)
    series = SeriesResult.from_dataset(ds)
    assert series.series_date is None
    assert series.series_number is None
    assert series.dataset.SeriesDate == "yesterday"


def test_instance_counts_and_multi_values():
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3.4"
    ds.InstanceNumber = "7"
    ds.Rows = 512
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ContentDate = "20240101"
    instance = InstanceResult.from_dataset(ds)
    assert (instance.instance_number, instance.rows) == (7, 512)
    assert instance.image_type == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert instance.content_date == date(2024, 1, 1)


def test_patient_counts():
    ds = Dataset()
    ds.PatientID = "P"
    ds.PatientSex = "F"
    ds.NumberOfPatientRelatedStudies = "2"
    patient = PatientResult.from_dataset(ds)
    assert (patient.patient_id, patient.patient_sex, patient.number_of_patient_related_studies) == ("P", "F", 2)


@pytest.mark.parametrize("level", list(Level))
def test_every_field_is_a_standard_key_of_its_level_or_above(level):
    allowed = {k for lvl in list(Level)[: list(Level).index(level) + 1] for k in LEVEL_KEYS[lvl]}
    assert set(RESULTS[level].keywords.values()) <= allowed


def test_study_query_values_become_matching_values():
    query = StudyQuery(patient_id="P-1", study_date=(date(2024, 1, 1), date(2024, 1, 31)),
                       modality="CT", study_instance_uid=["1.2", "1.3"], limit=5).to_query()
    assert query.level is Level.STUDY
    assert query.match == {"PatientID": "P-1", "StudyDate": "20240101-20240131",
                           "ModalitiesInStudy": "CT", "StudyInstanceUID": "1.2\\1.3"}
    assert query.limit == 5
    assert "NumberOfStudyRelatedSeries" in query.return_keys


def test_open_ranges_and_strings_pass_as_they_are():
    assert StudyQuery(study_date=(None, date(2024, 1, 31))).to_query().match["StudyDate"] == "-20240131"
    assert StudyQuery(study_date="20240101-").to_query().match["StudyDate"] == "20240101-"
    assert SeriesQuery(series_number=3).to_query().match["SeriesNumber"] == "3"


def test_patient_query_is_patient_root_and_instance_query_image_level():
    assert PatientQuery(patient_id="P").to_query().model.value == "patient"
    assert InstanceQuery(sop_instance_uid="1.2").to_query().level is Level.IMAGE


def test_names_are_not_asked_unless_allowed():
    query = StudyQuery(patient_id="P").to_query()
    assert "PatientName" not in query.to_identifier()
    assert "PatientName" in query.to_identifier(ALLOWED)
    with pytest.raises(QueryError, match="allow_patient_names"):
        StudyQuery(patient_name="Doe*").to_query().to_identifier()


def test_bad_values_are_query_errors():
    with pytest.raises(QueryError, match="not a UID"):
        StudyQuery(study_instance_uid="not-a-uid").to_query()
    with pytest.raises(QueryError, match="StudyQuery"):
        StudyQuery(no_such_field="x")
    with pytest.raises(QueryError, match="series_number"):
        SeriesQuery(series_number="three")


def test_retrieve_result_dumps_in_memory_mode_as_uids():
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PixelData = b"\0" * 16
    result = RetrieveResult(method="get", completed=1, instances=[ds])
    dumped = json.loads(result.model_dump_json())
    assert dumped["instances"] == ["1.2.3.4"]
    assert dumped["status"] == "success"
    assert result.model_dump()["instances"][0] is ds


@pytest.mark.parametrize(("counts", "status"), [
    ({}, "success"), ({"completed": 3}, "success"), ({"completed": 2, "warning": 1}, "warning"),
    ({"completed": 2, "failed": 1}, "partial"), ({"failed": 3}, "failure"),
    ({"completed": 3, "not_received": 3}, "failure"), ({"completed": 3, "not_received": 1}, "partial"),
])
def test_retrieve_status(counts, status):
    assert RetrieveResult(method="get", **counts).status == status
