"""Decoding the identifier of a query or retrieve message (PS3.4 C.4), bounded: a
deflated one (PS3.5 A.5) is inflated through :mod:`pacskit.deflate`, never beyond
:data:`~pacskit.deflate.IDENTIFIER_LIMIT`."""

from __future__ import annotations

from io import BytesIO

from pydicom import Dataset
from pydicom.uid import UID
from pynetdicom.dsutils import decode

from pacskit.deflate import IDENTIFIER_LIMIT, inflate


def decode_identifier(data: bytes | bytearray | memoryview, transfer_syntax: UID,
                      limit: int = IDENTIFIER_LIMIT) -> Dataset:
    """The identifier ``data``, encoded in ``transfer_syntax``, as a dataset (whose
    values pydicom decodes on access).

    Raises:
        InflationLimitExceeded: deflated, it inflates to more than ``limit`` bytes.
        ValueError: it cannot be read (or inflated); the reason quotes none of its bytes.
    """
    raw = inflate(data, limit) if transfer_syntax.is_deflated else bytes(data)
    try:
        dataset = decode(BytesIO(raw), transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian)
    except Exception as exc:  # noqa: BLE001 - pydicom's text may quote a value (a name): only its type
        raise ValueError(f"unreadable identifier ({type(exc).__name__})") from None
    if dataset is None:
        raise ValueError("unreadable identifier")
    return dataset
