from pydicom import Dataset
from pydicom.sequence import Sequence

from pacskit.privacy import DEFAULT_PRIVACY, PATIENT_NAME_KEYWORDS, PrivacyPolicy, contains_names


def named_dataset() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^John"
    ds.OtherPatientNames = "Roe^Richard"
    ds.PatientBirthName = "Smith^Jane"
    ds.PatientMotherBirthName = "Brown^Mary"
    ds.PatientID = "P1"
    item = Dataset()
    item.PatientName = "Nested^Name"
    item.PatientID = "P2"
    ds.ReferencedPatientSequence = Sequence([item])
    return ds


def test_default_is_withhold():
    assert DEFAULT_PRIVACY.withholds_names
    assert not PrivacyPolicy(allow_patient_names=True).withholds_names


def test_return_keys_filtered():
    keys = ["PatientID", *PATIENT_NAME_KEYWORDS, "StudyDate"]
    assert DEFAULT_PRIVACY.filter_return_keys(keys) == ["PatientID", "StudyDate"]
    assert PrivacyPolicy(allow_patient_names=True).filter_return_keys(keys) == keys


def test_responses_lose_names_everywhere():
    ds = DEFAULT_PRIVACY.scrub_response(named_dataset())
    assert not any(k in ds for k in PATIENT_NAME_KEYWORDS)
    assert "PatientName" not in ds.ReferencedPatientSequence[0]
    assert ds.PatientID == "P1" and ds.ReferencedPatientSequence[0].PatientID == "P2"
    assert not contains_names(ds)


def test_instances_keep_empty_name_elements():
    ds = DEFAULT_PRIVACY.blank_instance(named_dataset())
    assert all(k in ds and not ds[k].value for k in PATIENT_NAME_KEYWORDS)
    assert ds.ReferencedPatientSequence[0].PatientName == ""
    assert not contains_names(ds)


def test_opt_in_keeps_names():
    policy = PrivacyPolicy(allow_patient_names=True)
    ds = policy.blank_instance(policy.scrub_response(named_dataset()))
    assert ds.PatientName == "Doe^John"
    assert contains_names(ds)
