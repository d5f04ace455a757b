import pytest
from pydantic import ValidationError
from pydicom import Dataset
from pydicom.tag import Tag

from pacskit.errors import QueryError
from pacskit.privacy import PrivacyPolicy
from pacskit.query import InformationModel, Level, Query, keyword_of


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": "series", "keys": ["NoSuchKeyword=1"]}, "unknown keyword 'NoSuchKeyword'"),
        ({"level": "study", "keys": ["SOPInstanceUID=1.2"]}, "not a key of the STUDY level"),
        ({"level": "study", "keys": ["Modality=CT"]}, "not a key of the STUDY level"),
        ({"level": "study", "date": "2024-01-01"}, "not a valid DA"),
        ({"level": "study", "date": "20240132x"}, "not a valid DA"),
        ({"level": "study", "date": "20240201-20240101"}, "starts after it ends"),
        ({"level": "study", "date": "-"}, "empty range"),
        ({"level": "study", "keys": ["StudyTime=25x"]}, "not a valid TM"),
        ({"level": "study", "study_uid": "1.2.*"}, "wildcards are not allowed"),
        ({"level": "study", "study_uid": "1.2.abc"}, "not a UID"),
        ({"level": "study", "accession": "A\\B"}, "only allowed for UIDs"),
        ({"level": "patient", "model": "study"}, "no PATIENT level"),
        ({"level": "stdy"}, "unknown level"),
        ({"level": "study", "model": "tree"}, "unknown information model"),
        ({"level": "study", "limit": 0}, "at least 1"),
        ({"level": "study", "keys": ["(7777,7777)=x"]}, "unknown tag"),
    ],
)
def test_invalid_queries_say_why(kwargs, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace("*", r"\*").replace("\\", r"\\")):
        Query.build(**kwargs)


def test_keywords_from_tags():
    assert keyword_of("00100020") == "PatientID"
    assert keyword_of("(0010,0020)") == "PatientID"
    assert keyword_of("PatientID") == "PatientID"


def test_build_maps_filters_to_the_level():
    study = Query.build("study", modality="CT", description="CHEST*", date="20240101-")
    assert study.match == {"ModalitiesInStudy": "CT", "StudyDescription": "CHEST*", "StudyDate": "20240101-"}
    assert study.model is InformationModel.STUDY_ROOT
    series = Query.build("series", modality="CT", description="AX*", study_uid="1.2")
    assert series.match == {"StudyInstanceUID": "1.2", "Modality": "CT", "SeriesDescription": "AX*"}
    patient = Query.build("patient", patient_id="P*")
    assert patient.model is InformationModel.PATIENT_ROOT
    assert Query.build("image").level is Level.IMAGE
    assert Query.build("instance").level is Level.IMAGE


def test_keys_are_matches_or_return_keys():
    query = Query.build("series", keys=["BodyPartExamined=CHEST", "ProtocolName"])
    assert query.match == {"BodyPartExamined": "CHEST"}
    assert query.return_keys == ("ProtocolName",)


@pytest.mark.parametrize("given", ["1.2.3\\1.2.4", "1.2.3,1.2.4", " 1.2.3 , 1.2.4 "])
def test_a_uid_list_with_commas_or_backslashes_is_one_dicom_list(given):
    query = Query.build("study", study_uid=given)
    assert query.match == {"StudyInstanceUID": "1.2.3\\1.2.4"}
    assert query.to_identifier().StudyInstanceUID == ["1.2.3", "1.2.4"]
    assert Query(level="series", match={"SeriesInstanceUID": given}).match["SeriesInstanceUID"] == "1.2.3\\1.2.4"


def test_a_uid_key_given_again_adds_to_the_list_any_other_key_must_agree():
    query = Query.build("study", study_uid="1.2.3", keys=["StudyInstanceUID=1.2.4", "StudyInstanceUID=1.2.5"])
    assert query.match["StudyInstanceUID"] == "1.2.3\\1.2.4\\1.2.5"
    assert Query.build("study", accession="A1", keys=["AccessionNumber=A1"]).match == {"AccessionNumber": "A1"}
    with pytest.raises(QueryError, match="ModalitiesInStudy is given twice: 'MR' and 'CT'"):
        Query.build("study", modality="MR", keys=["ModalitiesInStudy=CT"])
    with pytest.raises(QueryError, match="not a UID"):
        Query.build("study", study_uid="1.2.3,")


def test_identifier_carries_level_matches_and_empty_return_keys():
    query = Query.build("study", patient_id="P1", date="20240101-20240131", keys=["InstitutionName"])
    ds = query.to_identifier()
    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.PatientID == "P1"
    assert ds.StudyDate == "20240101-20240131"
    assert ds["StudyInstanceUID"].value in (None, "")
    assert ds["InstitutionName"].VR == "LO"
    assert "NumberOfStudyRelatedInstances" in ds
    assert "SpecificCharacterSet" not in ds


def test_identifier_never_requests_names_by_default():
    query = Query.build("patient", keys=["OtherPatientNames", "PatientBirthName"])
    withheld = query.to_identifier()
    for keyword in ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName"):
        assert keyword not in withheld
    allowed = query.to_identifier(PrivacyPolicy(allow_patient_names=True))
    assert "PatientName" in allowed and "OtherPatientNames" in allowed


def test_matching_on_names_needs_the_opt_in():
    query = Query.build("patient", keys=["PatientName=DOE*"])
    with pytest.raises(QueryError, match="allow_patient_names"):
        query.to_identifier()
    assert query.to_identifier(PrivacyPolicy(allow_patient_names=True)).PatientName == "DOE*"


def test_non_ascii_values_declare_utf8():
    ds = Query.build("study", description="Müller*").to_identifier()
    assert ds.SpecificCharacterSet == "ISO_IR 192"


def test_identifier_encodes():
    from io import BytesIO

    from pydicom import dcmread
    from pydicom.filewriter import dcmwrite

    ds = Query.build("series", study_uid="1.2.3", keys=["ProtocolName"]).to_identifier()
    buffer = BytesIO()
    dcmwrite(buffer, ds, implicit_vr=True, little_endian=True)
    buffer.seek(0)
    decoded = dcmread(buffer, force=True)
    assert decoded.StudyInstanceUID == "1.2.3" and "ProtocolName" in decoded


def test_hierarchy_keys():
    assert Query.build("series").missing_hierarchy_keys() == ["StudyInstanceUID"]
    assert Query.build("image", study_uid="1", series_uid="2").missing_hierarchy_keys() == []
    assert Query.build("series", model="patient", study_uid="1").missing_hierarchy_keys() == ["PatientID"]


def test_query_is_immutable_data():
    query = Query.build("study", patient_id="P1")
    with pytest.raises(ValidationError):
        query.limit = 5  # type: ignore[misc]
    assert Query.model_validate(query.model_dump()) == query
    assert isinstance(Tag("PatientID"), int)
    assert query.matches(Dataset()) is False


def test_any_dictionary_keyword_is_a_key_and_the_nonstandard_ones_are_named():
    query = Query.build("image", keys=["StationName", "0008,1090=X*", "InstitutionName", "SpecificCharacterSet"])
    assert query.nonstandard_keys() == ["ManufacturerModelName", "StationName"]
    identifier = query.to_identifier()
    assert identifier.StationName is None and identifier.ManufacturerModelName == "X*"
    assert "SpecificCharacterSet" in identifier


def test_our_specific_character_set_is_kept_when_it_is_also_a_return_key():
    identifier = Query.build("study", keys=["StudyDescription=Crâne", "SpecificCharacterSet"]).to_identifier()
    assert identifier.SpecificCharacterSet == "ISO_IR 192"


def test_the_query_retrieve_level_is_not_a_key():
    with pytest.raises(QueryError, match="QueryRetrieveLevel cannot be a key"):
        Query.build("study", keys=["QueryRetrieveLevel=SERIES"])


def test_a_key_inside_a_sequence_is_one_item_of_the_identifier():
    query = Query.build("study", keys=["(0008,1032)[0].CodeValue=XYZ", "ProcedureCodeSequence.CodeMeaning"])
    sequence = query.to_identifier().ProcedureCodeSequence
    assert len(sequence) == 1
    assert sequence[0].CodeValue == "XYZ" and "CodeMeaning" in sequence[0]


def test_a_sequence_matches_when_one_of_its_items_matches_every_key():
    query = Query.build("study", keys=["ProcedureCodeSequence.CodeValue=XYZ",
                                       "ProcedureCodeSequence.CodingSchemeDesignator=L"])
    items = [Dataset(), Dataset()]
    items[0].CodeValue, items[0].CodingSchemeDesignator = "ABC", "L"
    items[1].CodeValue, items[1].CodingSchemeDesignator = "XYZ", "L"
    answer = Dataset()
    answer.ProcedureCodeSequence = items
    assert query.matches(answer)
    items[1].CodingSchemeDesignator = "99"
    assert not query.matches(answer)
