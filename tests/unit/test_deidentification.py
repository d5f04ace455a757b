"""De-identification (PS3.15 Annex E) on the marker corpus: what is left of every marker
in the bytes written, option by option; pseudonyms, dates, the method recorded."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from io import BytesIO

import pytest
from pydicom import Dataset, dcmread, dcmwrite
from pydicom.sr.codedict import codes

from pacskit.deid import OPTIONS, Deidentifier, load_table, parse_options
from pacskit.deid.dates import shift_date, shift_datetime
from pacskit.errors import DeidentificationSecretMissing, UsageError
from pacskit.settings import Settings
from pacskit.testing.deid_corpus import Marker, marker_instance
from pacskit.testing.samples import pydicom_samples

SECRET = b"test secret"
TEXT = {"CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"}


def written(dataset: Dataset) -> bytes:
    buffer = BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def deidentified(options: tuple[str, ...] = ()) -> tuple[bytes, list[Marker]]:
    dataset, markers = marker_instance()
    data = written(dataset)
    copy = dcmread(BytesIO(data))
    Deidentifier(SECRET, options)(copy)
    return written(copy), markers


def values(dataset: Dataset) -> set[str]:
    found = set()
    for element in dataset.iterall():
        if element.VR != "SQ":
            items = element.value if isinstance(element.value, list | tuple) else [element.value]
            found.update(str(v) for v in items)
    return found


def left(data: bytes, markers: list[Marker]) -> set[Marker]:
    """The markers still in the file: by their bytes (when long enough to be unique),
    and by value for the short binary ones."""
    dataset = dcmread(BytesIO(data))
    present = values(dataset) | values(dataset.file_meta)
    found = set()
    for marker in markers:
        if len(marker.text) >= 6:
            if marker.text in data:
                found.add(marker)
        elif marker.vr in ("US", "SS", "UL", "SL", "AS") and str(_decoded(marker)) in present:
            found.add(marker)
    return found


def _decoded(marker: Marker) -> object:
    if marker.vr == "AS":
        return marker.text.decode()
    return int.from_bytes(marker.text, "little", signed=marker.vr in ("SS", "SL"))


def expected_kept(markers: list[Marker], options: tuple[str, ...]) -> set[Marker]:
    """The markers an option column keeps, read from the table itself: K, or C on text
    (cleaned text keeps what is not identifying) and on a time of day."""
    rows = {row.tag: row for row in load_table().rows}
    kept = set()
    for marker in markers:
        if marker.row == "private" or marker.vr == "SQ":
            continue
        given = {rows[marker.row].options.get(o) for o in options}
        if "K" in given or ("C" in given and marker.vr in TEXT | {"TM"}):
            kept.add(marker)
    return kept


def test_the_basic_profile_leaves_no_marker_in_any_byte() -> None:
    data, markers = deidentified()
    assert {m.depth for m in markers} == {0, 2}
    assert {m.row for m in markers if m.row.startswith("(5")} and any(m.row == "private" for m in markers)
    assert left(data, markers) == set()
    dataset = dcmread(BytesIO(data))
    assert dataset.PatientIdentityRemoved == "YES"
    assert "PatientName" not in dataset or not dataset.PatientName
    assert b"MKSOURCEAE" not in data and b"MKPRIVATECREATOR" not in data


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_keeps_exactly_its_attributes(option: str) -> None:
    data, markers = deidentified((option,))
    assert left(data, markers) == expected_kept(markers, (option,))


def test_options_that_keep_sequences_keep_them() -> None:
    data, _ = deidentified(("retain-institution-identity", "clean-structured-content", "clean-graphics"))
    dataset = dcmread(BytesIO(data))
    for keyword in ("InstitutionCodeSequence", "ContentSequence", "AcquisitionContextSequence",
                    "SpecimenPreparationSequence", "GraphicAnnotationSequence"):
        assert len(dataset[keyword].value) == 1, keyword
    assert 0x60004000 in dataset and 0x60003000 not in dataset  # a bitmap cannot be cleaned
    basic = dcmread(BytesIO(deidentified()[0]))
    assert 0x60004000 not in basic and "ReferencedPatientSequence" not in basic  # X
    assert len(basic.InstitutionCodeSequence[0]) == 0  # X/Z/D: a dummy, its items de-identified
    assert len(basic.SpecimenPreparationSequence) == 0  # Z


def test_uid_references_stay_consistent_across_instances_and_file_meta() -> None:
    first, _ = marker_instance()
    second, _ = marker_instance()
    second.SOPInstanceUID = second.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.999.2"
    second.ReferencedImageSequence[0].ReferencedSOPInstanceUID = first.SOPInstanceUID
    second.ReferencedImageSequence[0].ReferencedSOPClassUID = first.SOPClassUID
    original_study = first.StudyInstanceUID
    deid = Deidentifier(SECRET)
    a = dcmread(BytesIO(written(deid(dcmread(BytesIO(written(first)))))))
    b = dcmread(BytesIO(written(deid(dcmread(BytesIO(written(second)))))))
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID != first.SOPInstanceUID
    assert a.StudyInstanceUID == b.StudyInstanceUID != original_study
    assert a.SOPInstanceUID.startswith("2.25.") and len(a.SOPInstanceUID) <= 64
    assert b.SOPClassUID == first.SOPClassUID
    nested = a[0x00089215][0][0x00082218][0]
    assert nested.StudyInstanceUID != a.StudyInstanceUID  # the nested copy had its own marker UID
    assert nested.StudyInstanceUID == Deidentifier(SECRET).pseudonyms.uid(second[0x00089215][0][0x00082218][0].StudyInstanceUID)


def test_pseudonyms_are_keyed_and_deterministic() -> None:
    one, two, other = Deidentifier(SECRET), Deidentifier(SECRET), Deidentifier(b"another secret")
    assert one.pseudonyms.uid("1.2.3") == two.pseudonyms.uid("1.2.3") != other.pseudonyms.uid("1.2.3")
    assert one.pseudonyms.patient_id("P1") == two.pseudonyms.patient_id("P1") != other.pseudonyms.patient_id("P1")
    digest = hmac.new(SECRET, b"uid\0" + b"1.2.3", hashlib.sha256).digest()
    assert one.pseudonyms.uid("1.2.3") == f"2.25.{int.from_bytes(digest[:16], 'big')}"


def test_modified_dates_keep_the_intervals_of_a_patient() -> None:
    source, _ = marker_instance()
    source.StudyDate, source.SeriesDate, source.ContentDate = "20240229", "20240301", "19800115"
    source.AcquisitionDateTime = "20240301123456.5-0500"
    source.StudyTime = "101500"
    out = Deidentifier(SECRET, ("retain-modified-dates",))(dcmread(BytesIO(written(source))))
    days = Deidentifier(SECRET).pseudonyms.day_offset(source.PatientID)
    assert days < 0
    assert out.StudyDate == shift_date("20240229", days)
    as_date = [date(int(d[:4]), int(d[4:6]), int(d[6:8])) for d in (out.StudyDate, out.SeriesDate, out.ContentDate)]
    assert (as_date[1] - as_date[0]).days == 1
    assert (as_date[0] - as_date[2]).days == (date(2024, 2, 29) - date(1980, 1, 15)).days
    assert out.AcquisitionDateTime.endswith("123456.5-0500") and out.AcquisitionDateTime[:8] == out.SeriesDate
    assert out.StudyTime == "101500"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    full = Deidentifier(SECRET, ("retain-full-dates",))(dcmread(BytesIO(written(source))))
    assert full.StudyDate == "20240229" and full.LongitudinalTemporalInformationModified == "UNMODIFIED"
    removed = Deidentifier(SECRET)(dcmread(BytesIO(written(source))))
    assert not removed.StudyDate and removed.LongitudinalTemporalInformationModified == "REMOVED"


def test_dates_and_datetimes_move_whole_days() -> None:
    assert shift_date("20240301", -1) == "20240229"
    assert shift_date("2024.03.01", -1) == "20240229"
    assert shift_date("20240101-20240131", 10) == "20240111-20240210"
    assert shift_date("20240101-", 1) == "20240102-"
    assert shift_date("not a date", 1) is None
    assert shift_datetime("20240301000000.000001+0100", -1) == "20240229000000.000001+0100"
    assert shift_datetime("202403", -1) == "202402"
    assert shift_datetime("2024", -1) == "2023"
    assert shift_datetime("20241301", 1) is None


def test_the_method_is_recorded_with_cid_7050_codes() -> None:
    chosen = ("clean-descriptors", "retain-uids")
    dataset = Deidentifier(SECRET, chosen)(dcmread(BytesIO(written(marker_instance()[0]))))
    recorded = [(i.CodeValue, i.CodingSchemeDesignator, i.CodeMeaning) for i in dataset.DeidentificationMethodCodeSequence]
    assert recorded == [("113100", "DCM", "Basic Application Confidentiality Profile"),
                        ("113105", "DCM", "Clean Descriptors Option"), ("113110", "DCM", "Retain UIDs Option")]
    assert codes.DCM.RetainUidsOption.value == "113110"
    assert "2024b" in dataset.DeidentificationMethod[0]
    assert all(len(v) <= 64 for v in dataset.DeidentificationMethod)


def test_clean_descriptors_strikes_out_identifying_values_and_keeps_the_rest() -> None:
    dataset, _ = marker_instance()
    dataset.PatientID = "PID-4711"
    dataset.StudyDescription = "Head CT of pid-4711, follow-up"
    out = Deidentifier(SECRET, ("clean-descriptors",))(dcmread(BytesIO(written(dataset))))
    assert out.StudyDescription == "Head CT of ***, follow-up"


def test_pydicom_samples_stay_readable_with_identical_pixel_data() -> None:
    deid = Deidentifier(SECRET)
    for path in pydicom_samples():
        original = dcmread(path)
        changed = dcmread(BytesIO(written(deid(dcmread(path)))))
        assert changed.get("PixelData") == original.get("PixelData"), path
        assert changed.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert changed.PatientIdentityRemoved == "YES"
        if "SOPInstanceUID" in original:
            assert changed.SOPInstanceUID == deid.pseudonyms.uid(original.SOPInstanceUID)


def test_options_are_parsed_and_checked() -> None:
    assert parse_options(["retain-uids,clean-graphics", "Retain-Device-Identity"]) == {
        "retain-uids", "clean-graphics", "retain-device-identity"}
    with pytest.raises(UsageError, match="unknown de-identification option 'retain-everything'"):
        parse_options(["retain-everything"])
    with pytest.raises(UsageError, match="exclude each other"):
        parse_options(["retain-full-dates", "retain-modified-dates"])


def test_the_secret_comes_from_settings_a_file_or_the_environment(tmp_path, monkeypatch) -> None:
    with pytest.raises(DeidentificationSecretMissing) as missing:
        Settings().deidentify.secret_bytes()
    assert missing.value.exit_code == 8
    secret_file = tmp_path / "secret"
    secret_file.write_text("from a file\n")
    assert Settings(deidentify={"secret_file": secret_file}).deidentify.secret_bytes() == b"from a file"
    monkeypatch.setenv("PACSKIT_DEIDENTIFY__SECRET", "from the environment")
    assert Settings().deidentify.secret_bytes() == b"from the environment"
    assert "from the environment" not in repr(Settings())


def test_the_table_records_its_edition_and_source() -> None:
    table = load_table()
    assert table.edition == "2024b"
    assert table.source["repository"] == "https://github.com/innolitics/dicom-standard"
    assert len(table.source["commit"]) == 40
    assert len(table.rows) == 621


def _differences(a: Dataset, b: Dataset, path: str = "") -> list[str]:
    """Where two datasets differ, group lengths and the implementation's own file meta
    elements (0002,0012-0013) aside."""
    ignored = (0x00020012, 0x00020013)
    tags_a = {e.tag for e in a if e.tag.element != 0 and e.tag not in ignored}
    tags_b = {e.tag for e in b if e.tag.element != 0 and e.tag not in ignored}
    found = [f"{path}{t} in one only" for t in sorted(tags_a ^ tags_b)]
    for tag in sorted(tags_a & tags_b):
        x, y = a[tag], b[tag]
        if x.VR == "SQ" and len(x.value) == len(y.value):
            for i, (p, q) in enumerate(zip(x.value, y.value, strict=True)):
                found += _differences(p, q, f"{path}{tag}[{i}].")
        elif x.value != y.value:
            found.append(f"{path}{tag}")
    return found


@pytest.mark.parametrize("options", [(), ("retain-modified-dates",), ("retain-uids", "retain-device-identity"),
                                     ("retain-institution-identity", "retain-full-dates",
                                      "clean-structured-content")])
def test_the_byte_path_gives_what_the_pydicom_path_gives(options: tuple[str, ...], tmp_path) -> None:
    from pacskit.deid.encoded import deidentify_encoded
    from pacskit.testing.corpus import generate_corpus

    deid = Deidentifier(SECRET, options)
    generated = [c.path.read_bytes() for c in generate_corpus(tmp_path, patients=1, studies_per_patient=1,
                                                              series_per_study=1, instances_per_series=2, seed=3)]
    inputs = [written(marker_instance()[0]), *generated, *(p.read_bytes() for p in pydicom_samples())]
    declined = 0
    for data in inputs:
        fast = deidentify_encoded(data, deid)
        if fast is None:
            declined += 1
            continue
        slow = dcmread(BytesIO(written(deid(dcmread(BytesIO(data))))))
        got = dcmread(BytesIO(fast))
        assert _differences(slow, got) + _differences(slow.file_meta, got.file_meta, "meta.") == []
    assert declined == 2  # the deflated and the big endian sample


def test_the_byte_path_declines_what_it_cannot_do_alike() -> None:
    from pacskit.deid.encoded import deidentify_encoded

    data = written(marker_instance()[0])
    for cleaning in ("clean-descriptors", "retain-patient-characteristics", "clean-graphics"):
        assert deidentify_encoded(data, Deidentifier(SECRET, (cleaning,))) is None  # text to clean
    assert deidentify_encoded(data, Deidentifier(SECRET)) is not None
    assert deidentify_encoded(b"not DICOM", Deidentifier(SECRET)) is None
