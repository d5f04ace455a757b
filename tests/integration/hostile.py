"""Hostile datasets, built without holding what they claim: deflate bombs (a small
stream that inflates to hundreds of MiB), values longer than their stream, sequences
nested a thousand deep; and a requestor that fragments a dataset to the PDU size the
acceptor announced."""

from __future__ import annotations

import struct
import zlib

from pdu_link import PduLink
from pydicom import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pynetdicom.dsutils import encode
from raw_pdu import COMMAND_FRAGMENT, LAST_FRAGMENT, p_data_tf, pdv

from pacskit.encoded import file_meta

DEFLATED = "1.2.840.10008.1.2.1.99"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
ENCAPSULATED_DOCUMENT = 0x00420011
MiB = 1 << 20
PIXEL_DATA = 0x7FE00010
PRIVATE_OB = 0x00111010


def image_header(sop_class_uid: str = SECONDARY_CAPTURE, **values: object) -> Dataset:
    """An instance's attributes (a Secondary Capture image's by default), without Pixel
    Data."""
    ds = Dataset()
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "HOSTILE"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def explicit(ds: Dataset) -> bytes:
    encoded = encode(ds, False, True)
    assert encoded is not None
    return encoded


def long_element_header(tag: int, vr: bytes, length: int) -> bytes:
    """The header of an Explicit VR Little Endian element with a 4-byte length."""
    return struct.pack("<HH2s2xI", tag >> 16, tag & 0xFFFF, vr, length)


def deflate_bomb(header: bytes, tag: int, inflated: int) -> bytes:
    """``header``, then an OB element ``tag`` of zeros, the whole ``inflated`` bytes
    long once inflated, as a raw deflate stream (PS3.5 A.5)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    element = long_element_header(tag, b"OB", inflated - len(header) - 12)
    parts = [compressor.compress(header + element)]
    zeros = bytes(MiB)
    left = inflated - len(header) - 12
    while left > 0:
        parts.append(compressor.compress(zeros[:min(left, MiB)]))
        left -= MiB
    parts.append(compressor.flush())
    return b"".join(parts)


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def nested_sequences(depth: int) -> Dataset:
    """An instance whose Content Sequence nests ``depth`` levels deep."""
    inner = Dataset()
    inner.CodeValue = "LEAF"
    for _ in range(depth):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    ds = image_header()
    ds.ContentSequence = inner.ContentSequence
    return ds


def part10(ds: Dataset, dataset: bytes, transfer_syntax: str) -> bytes:
    """A Part 10 file holding ``dataset`` (already encoded in ``transfer_syntax``)."""
    return file_meta(ds.SOPClassUID, ds.SOPInstanceUID, transfer_syntax) + dataset


def send_fragmented(link: PduLink, context_id: int, command: bytes, data: bytes, max_pdu: int) -> None:
    """One DIMSE message: its command in one P-DATA-TF, its dataset in as many as the
    acceptor's maximum PDU length needs (PS3.8 9.3.5)."""
    link.send(p_data_tf(pdv(context_id, COMMAND_FRAGMENT | LAST_FRAGMENT, command)))
    size = max_pdu - 6
    for start in range(0, len(data), size):
        last = start + size >= len(data)
        link.send(p_data_tf(pdv(context_id, LAST_FRAGMENT if last else 0, data[start:start + size])))
