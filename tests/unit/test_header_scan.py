"""The fast reading of a received instance's header agrees with the general one: the
same elements, the same refusals, the same decision on where a patient name may hide."""

from __future__ import annotations

import struct

import pytest
from pydicom import Dataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from tests.unit.test_encoded import SYNTAXES, indexed, part10

from pacskit.encoded import (
    Encoding,
    blank_names,
    blanked_parts,
    dataset_encoding,
    elements_up_to,
    file_meta,
    header_elements,
    parse_file_meta,
)
from pacskit.privacy import PATIENT_NAME_TAGS

SERIES_INSTANCE_UID = 0x0020000E
WANTED = frozenset({0x00080005, 0x00080018, 0x00100020, 0x0020000D, *PATIENT_NAME_TAGS})


def with_sequence(syntax: str) -> bytes:
    item = Dataset()
    item.CodeValue = "121"
    return part10(syntax, ProcedureCodeSequence=[item, item], SeriesInstanceUID="1.2.3",
                  PatientComments="plain")


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_the_kept_elements_are_those_the_general_reader_finds(syntax):
    data = with_sequence(syntax)
    offset, encoding = dataset_encoding(data)
    every = elements_up_to(data, offset, encoding, SERIES_INSTANCE_UID)
    kept = header_elements(data, offset, encoding, SERIES_INSTANCE_UID, WANTED)
    assert kept == {tag: e for tag, e in every.items() if tag in WANTED or not tag & 0xFFFF}
    assert 0x00100010 in kept and 0x00081032 not in kept


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("cut", [9, 40, 200, 330])
def test_truncated_data_is_refused_alike(syntax, cut):
    data = with_sequence(syntax)
    offset, encoding = dataset_encoding(data)
    truncated = data[:offset + cut]
    try:
        expected = elements_up_to(truncated, offset, encoding, SERIES_INSTANCE_UID)
    except ValueError:
        with pytest.raises(ValueError):
            header_elements(truncated, offset, encoding, SERIES_INSTANCE_UID, WANTED)
    else:
        kept = header_elements(truncated, offset, encoding, SERIES_INSTANCE_UID, WANTED)
        assert kept == {tag: e for tag, e in expected.items() if tag in WANTED or not tag & 0xFFFF}


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_the_dataset_offset_and_syntax_match_the_file_meta_parser(syntax):
    data = part10(syntax)
    meta, offset = parse_file_meta(data)
    assert dataset_encoding(data) == (offset, Encoding.of(meta[0x0010]))
    ours = file_meta("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4", syntax, "ORTHANC") + data[offset:]
    assert dataset_encoding(ours) == (parse_file_meta(ours)[1], Encoding.of(syntax))
    assert dataset_encoding(data[:offset - 3]) is None
    assert dataset_encoding(data[:offset]) == (offset, Encoding.of(syntax))


def counted(data: bytes, offset: int, elements: dict) -> bool:
    """Whether a name tag is written more often than as its own top-level element,
    counted the plain way."""
    return any(data.count(struct.pack("<HH", tag >> 16, tag & 0xFFFF), offset) > (tag in elements)
               for tag in PATIENT_NAME_TAGS)


@pytest.mark.parametrize(("keyword", "hidden"), [
    ("PatientComments", b"\x10\x00\x10\x00\x10\x00"),      # PatientName, twice overlapping
    ("PatientComments", b"\x10\x00\x01\x10\x00\x10\x00"),  # OtherPatientNames and PatientName
    ("PatientComments", b"\x10\x00\x60\x10"),              # PatientMotherBirthName
    ("PatientComments", b"\x10\x10\x00\x05\x10\x00"),      # PatientBirthName, at an odd byte
    ("PatientComments", b"\x10\x00\x11\x00"),              # (0010,0011): no name
    ("PatientComments", b"\x00\x10\x00\x10"),              # the big endian form
    ("StationName", "AB\x10\x00"),  # ends where PatientName's header begins: overlaps it
])
def test_name_tags_hidden_in_values_are_found_as_bytes_count_finds_them(keyword, hidden):
    value = hidden.decode("latin-1") if isinstance(hidden, bytes) else hidden
    data = part10(ExplicitVRLittleEndian, **{keyword: value})
    offset, encoding, elements = indexed(data)
    needs_pydicom = blank_names(data, offset, elements, encoding, PATIENT_NAME_TAGS) is None
    assert needs_pydicom == counted(data, offset, elements)


def test_a_name_tag_in_a_value_sends_the_instance_to_pydicom():
    data = part10(ExplicitVRLittleEndian, PatientComments="\x10\x00\x10\x00\x10\x00\x10\x00")
    offset, encoding, elements = indexed(data)
    assert blank_names(data, offset, elements, encoding, PATIENT_NAME_TAGS) is None
    plain = part10(ExplicitVRBigEndian)
    offset, encoding, elements = indexed(plain)
    assert blank_names(plain, offset, elements, encoding, PATIENT_NAME_TAGS) not in (None, plain)


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_the_blanked_pieces_are_the_blanked_bytes_and_views_of_the_data(syntax):
    data = part10(syntax, EncapsulatedDocument=bytes(70000))
    offset, encoding, elements = indexed(data)
    pieces = blanked_parts(data, offset, elements, encoding, PATIENT_NAME_TAGS)
    assert pieces is not None and len(pieces) > 1
    assert b"".join(pieces) == blank_names(data, offset, elements, encoding, PATIENT_NAME_TAGS)
    assert b"Doe^Jane" not in b"".join(pieces) and b"Anna" not in b"".join(pieces)
    assert sum(len(p) for p in pieces if isinstance(p, memoryview)) > 70000
    assert all(p.obj is data for p in pieces if isinstance(p, memoryview))
    plain = part10(syntax, PatientName="", OtherPatientNames=None)
    offset, encoding, elements = indexed(plain)
    assert blanked_parts(plain, offset, elements, encoding, PATIENT_NAME_TAGS) == [plain]
