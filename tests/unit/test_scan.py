"""Reading a Part 10 file's description without decoding it."""

from __future__ import annotations

import pytest
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from pacskit.scan import read_file, scan
from pacskit.testing.samples import DATA

CT = "1.2.840.10008.5.1.4.1.1.2"


def write(path, syntax=ExplicitVRLittleEndian, *, meta_uid=None, **attributes):
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "P1"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = meta_uid or ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(path, enforce_file_format=True, little_endian=syntax != ExplicitVRBigEndian,
               implicit_vr=syntax == ImplicitVRLittleEndian)
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_read_file_finds_uids_syntax_and_where_the_dataset_starts(tmp_path, syntax):
    path = tmp_path / "a.dcm"
    ds = write(path, syntax)
    item = read_file(path)
    assert (item.sop_class_uid, item.sop_instance_uid, item.transfer_syntax) == (CT, ds.SOPInstanceUID, syntax)
    assert item.size == path.stat().st_size
    raw = path.read_bytes()
    with_meta = dcmread(path)
    assert with_meta.file_meta.TransferSyntaxUID == syntax
    if syntax != DeflatedExplicitVRLittleEndian:
        order = "big" if syntax == ExplicitVRBigEndian else "little"
        assert int.from_bytes(raw[item.dataset_offset:item.dataset_offset + 2], order) == 0x0008


def test_the_dataset_uid_wins_over_a_disagreeing_file_meta(tmp_path):
    path = tmp_path / "a.dcm"
    ds = write(path, meta_uid="1.2.3.4")
    assert read_file(path).sop_instance_uid == ds.SOPInstanceUID


def test_a_long_sequence_before_the_uids_falls_back_to_pydicom(tmp_path):
    path = tmp_path / "a.dcm"
    code = Dataset()
    code.CodeValue = "fr"
    ds = write(path, LanguageCodeSequence=[code] * 400, SpecificCharacterSet="ISO_IR 100")
    assert path.read_bytes().rfind(ds.SOPInstanceUID.encode()) > 4096
    assert read_file(path).sop_instance_uid == ds.SOPInstanceUID


def test_a_file_of_file_meta_only_has_its_dataset_at_the_end(tmp_path):
    path = tmp_path / "a.dcm"
    write(path)
    raw = path.read_bytes()
    offset = read_file(path).dataset_offset
    (tmp_path / "b.dcm").write_bytes(raw[:offset])
    assert read_file(tmp_path / "b.dcm").dataset_offset == offset


@pytest.mark.parametrize("cut", [0, 50, 131, 140, 160])
def test_truncated_or_foreign_files_are_not_dicom(tmp_path, cut):
    path = tmp_path / "a.dcm"
    write(path)
    (tmp_path / "cut.dcm").write_bytes(path.read_bytes()[:cut])
    with pytest.raises(InvalidDicomError):
        read_file(tmp_path / "cut.dcm")


def test_pydicom_files_without_a_preamble_are_counted_not_sent(tmp_path):
    result = scan([DATA / "test_files" / "rtstruct.dcm", DATA / "test_files" / "CT_small.dcm"])
    assert (len(result.files), result.not_dicom) == (1, 1)


def test_scan_filters_on_patient(tmp_path):
    write(tmp_path / "a.dcm", PatientID="A")
    write(tmp_path / "b.dcm", PatientID="B")
    result = scan([tmp_path], patient_id="B")
    assert [f.path.name for f in result.files] == ["b.dcm"] and result.filtered_out == 1
