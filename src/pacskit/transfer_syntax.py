"""A negotiated transfer syntax as pacskit reads it: how a dataset on its presentation
context is encoded (PS3.5 Section 10, Annex A), without pydicom's UID dictionary."""

from __future__ import annotations

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED = frozenset({"1.2.840.10008.1.2.1.99"})
"""Deflated Explicit VR Little Endian (PS3.5 A.5), whose whole dataset is deflated.
Deflated Image Frame Compression (1.2.840.10008.1.2.8.1, A.4.13) deflates only the
frames of an encapsulated Pixel Data: its dataset is Explicit VR Little Endian."""


class TransferSyntax(str):
    """The UID of a transfer syntax, with the encoding it gives a dataset: the same three
    properties as pydicom's ``UID`` (a syntax not named here, compressed or private, is
    Explicit VR Little Endian, as PS3.5 A.4 says every encapsulated syntax is)."""

    __slots__ = ()

    @property
    def is_implicit_VR(self) -> bool:
        return self == IMPLICIT_VR_LITTLE_ENDIAN

    @property
    def is_little_endian(self) -> bool:
        return self != EXPLICIT_VR_BIG_ENDIAN

    @property
    def is_deflated(self) -> bool:
        return self in DEFLATED

    @property
    def name(self) -> str:
        """Its name in pydicom's UID dictionary (the UID itself if it has none)."""
        from pydicom.uid import UID

        return UID(self).name
