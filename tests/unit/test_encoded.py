"""Reading and patching encoded datasets without decoding them."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

from pacskit.encoded import (
    Encoding,
    HeaderValues,
    blank_names,
    elements_up_to,
    file_meta,
    index_dataset,
    parse_file_meta,
    sequence_encoding,
    tag_patterns,
)
from pacskit.privacy import PATIENT_NAME_KEYWORDS, PATIENT_NAME_TAGS

SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]


def part10(syntax=ExplicitVRLittleEndian, **attributes) -> bytes:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Müller^Anna"
    ds.PatientID = "P1"
    ds.OtherPatientNames = ["Doe^Jane", "Roe^J"]
    ds.StudyInstanceUID = generate_uid()
    ds.InstanceNumber = 7
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    for element in ds:
        if element.VR == "SQ":
            element.is_undefined_length = True
            for item in element.value:
                item.is_undefined_length_sequence_item = True
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True, little_endian=syntax != ExplicitVRBigEndian,
               implicit_vr=syntax == ImplicitVRLittleEndian)
    return buffer.getvalue()


def indexed(data: bytes):
    meta, offset = parse_file_meta(data)
    encoding = Encoding.of(meta[0x0010])
    return offset, encoding, index_dataset(data, offset, encoding)


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_names_are_blanked_in_the_bytes_and_everything_else_kept(syntax):
    data = part10(syntax)
    offset, encoding, elements = indexed(data)
    patched = blank_names(data, offset, elements, encoding, PATIENT_NAME_TAGS)
    assert patched is not None and patched != data
    before, after = dcmread(BytesIO(data)), dcmread(BytesIO(patched))
    for keyword in PATIENT_NAME_KEYWORDS:
        assert not after.get(keyword)
    assert after.PatientID == "P1" and after.InstanceNumber == 7
    assert [e.keyword for e in after] == [e.keyword for e in before]


def test_a_dataset_without_names_is_returned_as_it_is():
    data = part10(PatientName="", OtherPatientNames=None)
    offset, encoding, elements = indexed(data)
    assert blank_names(data, offset, elements, encoding, PATIENT_NAME_TAGS) is data


def test_a_name_nested_in_a_sequence_needs_pydicom():
    item = Dataset()
    item.PatientName = "Nested^Name"
    data = part10(OtherPatientIDsSequence=[item])
    offset, encoding, elements = indexed(data)
    assert blank_names(data, offset, elements, encoding, PATIENT_NAME_TAGS) is None


def test_undefined_length_sequences_and_encapsulated_pixel_data_are_stepped_over():
    item = Dataset()
    item.CodeValue = "121"
    data = part10(JPEGBaseline8Bit, ProcedureCodeSequence=[item, item], Rows=1, Columns=1,
                  BitsAllocated=8, PixelData=encapsulate([b"\xff\xd8" + b"x" * 100 + b"\xff\xd9"]))
    assert data.count(b"\xff\xff\xff\xff") == 4
    offset, encoding, elements = indexed(data)
    assert 0x7FE00010 in elements and elements[0x7FE00010].end == len(data)
    assert 0x00081032 in elements


def test_header_values_decode_text_and_fall_back_to_pydicom_for_the_rest():
    data = part10(ImplicitVRLittleEndian, PatientID="Ünïcode")
    offset, encoding, _ = indexed(data)
    values = HeaderValues(data, elements_up_to(data, offset, encoding, 0x00200013), encoding)
    ds = dcmread(BytesIO(data))
    assert values["SOPInstanceUID"] == ds.SOPInstanceUID
    assert values["PatientID"] == "Ünïcode"
    assert values["OtherPatientNames"] == ["Doe^Jane", "Roe^J"]
    assert int(values["InstanceNumber"]) == 7
    assert values.get("Modality") is None


@pytest.mark.parametrize("cut", [3, 30, 250])
def test_truncated_data_is_refused(cut):
    data = part10()
    _, offset = parse_file_meta(data)
    with pytest.raises(ValueError, match="past the end|truncated"):
        index_dataset(data[:offset + cut], offset, Encoding.of(ExplicitVRLittleEndian))


def test_file_meta_is_read_back_by_pydicom():
    meta = file_meta("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", ExplicitVRLittleEndian, "ORTHANC")
    data = part10()
    _, offset = parse_file_meta(data)
    ds = dcmread(BytesIO(meta + data[offset:]))
    assert ds.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert ds.file_meta.SourceApplicationEntityTitle == "ORTHANC"
    assert ds.PatientID == "P1"
    assert parse_file_meta(meta)[1] == len(meta)


def test_a_un_sequence_is_read_in_implicit_vr_little_endian_or_else_explicit():
    implicit = (b"\xfe\xff\x00\xe0\x0e\x00\x00\x00" + b"\x10\x00\x10\x00\x06\x00\x00\x00Doe^J ")
    explicit = (b"\xfe\xff\x00\xe0\x0e\x00\x00\x00" + b"\x10\x00\x10\x00PN\x06\x00Doe^J ")
    undefined = (b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + b"\x10\x00\x10\x00\x06\x00\x00\x00Doe^J "
                 + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00")
    assert sequence_encoding(implicit) == Encoding(explicit=False, little=True)
    assert sequence_encoding(undefined) == Encoding(explicit=False, little=True)
    assert sequence_encoding(explicit) == Encoding(explicit=True, little=True)
    assert sequence_encoding(implicit[:-2]) is None
    assert sequence_encoding(b"Doe^John") is None


def test_a_name_in_a_little_endian_un_of_a_big_endian_dataset_needs_pydicom():
    item = b"\xfe\xff\x00\xe0\x0e\x00\x00\x00" + b"\x10\x00\x10\x00\x06\x00\x00\x00Doe^J "
    data = part10(ExplicitVRBigEndian, PatientName="", OtherPatientNames=None)
    at = indexed(data)[2][0x00100010].header
    un = b"\x00\x09\x10\x10UN\x00\x00" + len(item).to_bytes(4, "big") + item
    data = data[:at] + un + data[at:]
    offset, encoding, elements = indexed(data)
    assert 0x00091010 in elements
    assert tag_patterns(0x00100010, encoding) == (b"\x00\x10\x00\x10", b"\x10\x00\x10\x00")
    assert blank_names(data, offset, elements, encoding, PATIENT_NAME_TAGS) is None
