"""The dataset of a DIMSE message other than a stored instance — the identifier of a
query or retrieve (PS3.4 C.4), the attributes of a normalized request (PS3.7 10.1) —
encoded in the context's transfer syntax, and decoded bounded: a deflated one (PS3.5 A.5)
is inflated through :mod:`pacskit.deflate`, never beyond
:data:`~pacskit.deflate.IDENTIFIER_LIMIT`."""

from __future__ import annotations

from io import BytesIO
from typing import Protocol

from pydicom import Dataset
from pynetdicom.dsutils import decode, encode

from pacskit.deflate import IDENTIFIER_LIMIT, inflate
from pacskit.encoded import encode_plain
from pacskit.transfer_syntax import TransferSyntax


class PreEncoded(Protocol):
    """A response identifier that encodes itself (a worklist answer made of its item's
    encoded elements, :class:`pacskit.archive.worklist.Answer`)."""

    def encoded(self, transfer_syntax: TransferSyntax) -> bytes:
        """The identifier in ``transfer_syntax``; ValueError if it cannot be."""
        ...


def encode_identifier(dataset: Dataset | PreEncoded, transfer_syntax: TransferSyntax) -> bytes:
    """``dataset`` encoded in ``transfer_syntax``; a plain one (ASCII text, numbers) is
    written directly (:func:`~pacskit.encoded.encode_plain`), others by pydicom, and a
    :class:`PreEncoded` one by itself.

    Raises:
        ValueError: it cannot be encoded in that syntax.
    """
    if not isinstance(dataset, Dataset):
        return dataset.encoded(transfer_syntax)
    if transfer_syntax.is_little_endian and not transfer_syntax.is_deflated:
        plain = encode_plain(dataset, implicit=transfer_syntax.is_implicit_VR)
        if plain is not None:
            return plain
    encoded = encode(dataset, transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian,
                     transfer_syntax.is_deflated)
    if encoded is None:
        raise ValueError(f"a dataset that cannot be encoded in {transfer_syntax.name}")
    return encoded


def decode_identifier(data: bytes | bytearray | memoryview, transfer_syntax: TransferSyntax,
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
