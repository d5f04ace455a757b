"""UN elements that hold a sequence (PS3.5 6.2.2), read as one and written back.

A peer that does not know an attribute — a private one, or one newer than its dictionary
— sends it with VR UN. If the attribute is a sequence, its value is the sequence's items,
encoded in Implicit VR Little Endian whatever the transfer syntax (PS3.5 6.2.2), and it
may hold any attribute at any depth, patient names included. pydicom reads a UN of
undefined length as a sequence (CP-246), but leaves one of defined length as bytes: here
those bytes are read as items, and the items are encoded back the same way.
"""

from __future__ import annotations

from io import BytesIO

from pydicom.charset import default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_sequence
from pydicom.filewriter import write_sequence_item
from pydicom.sequence import Sequence

from pacskit.encoded import ITEM_LITTLE, Encoding, sequence_encoding


def is_sequence(element: DataElement | RawDataElement) -> bool:
    """Whether ``element`` is a sequence by its VR (SQ, or, read in Implicit VR, SQ in
    the dictionary): pydicom reads it as one when it is converted."""
    return _vr(element) == "SQ"


def unknown_value(element: DataElement | RawDataElement) -> bytes | None:
    """The value of ``element`` if it is a UN — or, read in Implicit VR, an attribute no
    dictionary knows — whose value begins with an Item tag; None otherwise. The element
    is not converted."""
    value = element.value
    if not isinstance(value, bytes) or not value.startswith(ITEM_LITTLE):
        return None
    return value if _vr(element) == "UN" else None


def _vr(element: DataElement | RawDataElement) -> str:
    if element.VR is not None:
        return str(element.VR)
    try:
        return str(dictionary_VR(element.tag))
    except KeyError:
        return "UN"


def read_items(value: bytes) -> tuple[Sequence, Encoding] | None:
    """The items of a UN value, and how they are encoded (see
    :func:`pacskit.encoded.sequence_encoding`); None if the value is not a well-formed
    sequence."""
    encoding = sequence_encoding(value)
    if encoding is None:
        return None
    items = read_sequence(BytesIO(value), not encoding.explicit, True, len(value), default_encoding)
    return items, encoding


def encode_items(items: Sequence, encoding: Encoding) -> bytes:
    """``items`` encoded as the value of a UN element, in ``encoding``."""
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = not encoding.explicit
    buffer.is_little_endian = True
    for item in items:
        write_sequence_item(buffer, item, [default_encoding])
    return buffer.getvalue()
