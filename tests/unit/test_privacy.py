from io import BytesIO

import pytest
from pydicom import Dataset, dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence

from pacskit.errors import UsageError
from pacskit.layout import Layout
from pacskit.name_walk import contains_names
from pacskit.privacy import (
    DEFAULT_PRIVACY,
    PATIENT_NAME_KEYWORDS,
    PATIENT_NAME_TAGS,
    PrivacyPolicy,
)
from pacskit.testing.hidden_names import NAME_MARKER, VARIANTS, craft_hidden_names


def test_the_withheld_tags_are_the_dictionary_tags_of_the_withheld_keywords():
    assert {tag_for_keyword(keyword) for keyword in PATIENT_NAME_KEYWORDS} == PATIENT_NAME_TAGS


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


@pytest.mark.parametrize("keyword", PATIENT_NAME_KEYWORDS)
@pytest.mark.parametrize("field", ["{%s}", "{%s:>20}", "{%s:.3}"])
def test_a_layout_with_a_name_is_refused_unless_names_are_allowed(keyword, field):
    layout = Layout(f"{field % keyword}/{{SOPInstanceUID}}.dcm")
    with pytest.raises(UsageError, match=f"{{{keyword}}} is a patient name"):
        DEFAULT_PRIVACY.check_layout(layout)
    PrivacyPolicy(allow_patient_names=True).check_layout(layout)
    DEFAULT_PRIVACY.check_layout(Layout("{PatientID}/{ReferringPhysicianName}/{SOPInstanceUID}.dcm"))


def vrs(ds: Dataset, dropped: frozenset[int] | set[int] = frozenset()) -> dict[int, str]:
    """The VR of every top-level element but the names (and ``dropped``), unconverted."""
    return {t: ds.get_item(t).VR for t in list(ds.keys()) if t not in PATIENT_NAME_TAGS | dropped}


@pytest.mark.parametrize("variant", VARIANTS)
def test_names_hidden_in_un_and_wrong_vrs_are_found_and_blanked(variant, tmp_path, recwarn):
    crafted = next(c for c in craft_hidden_names(tmp_path) if c.variant == variant)
    ds = dcmread(crafted.path)
    assert contains_names(ds)
    DEFAULT_PRIVACY.blank_instance(ds)
    assert not contains_names(ds)
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    assert NAME_MARKER not in buffer.getvalue()
    assert all(kept in buffer.getvalue() for kept in crafted.kept)
    assert ds.PixelData == crafted.pixel_data
    assert vrs(dcmread(crafted.path), dropped={0x00091013}) == vrs(dcmread(BytesIO(buffer.getvalue())))
    assert not [w for w in recwarn if NAME_MARKER.decode() in str(w.message)]


def test_a_un_sequence_is_rewritten_only_when_it_holds_a_name(tmp_path):
    crafted = next(c for c in craft_hidden_names(tmp_path) if c.variant == "un-defined")
    ds = dcmread(crafted.path)
    before = ds.get_item(0x00091011).value
    DEFAULT_PRIVACY.blank_instance(ds)
    after = ds.get_item(0x00091011).value
    assert after != before and len(after) < len(before)
    item = Dataset()
    item.PatientID = "P3"
    ds.add_new(0x00091030, "UN", b"\xfe\xff\x00\xe0" + b"\x0e\x00\x00\x00" + b"\x10\x00\x20\x00\x06\x00\x00\x00P3    ")
    DEFAULT_PRIVACY.blank_instance(ds)
    assert ds.get_item(0x00091030).value.endswith(b"P3    ")
