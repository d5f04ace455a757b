"""A corpus for proving de-identification: one instance with a unique marker in every
attribute of PS3.15 Table E.1-1 (each in a value valid for its VR), again two sequences
deep, and in private attributes; the markers are listed so that a test can look for
each in the bytes written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pydicom import Dataset, Sequence
from pydicom.datadict import dictionary_VR
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from pacskit.deid.table import PRIVATE_ROW, load_table

CARRIERS = (0x00089215, 0x00082218)
"""Derivation Code Sequence and Anatomic Region Sequence: not in Table E.1-1 (kept and
entered), they hold the second copy of every attribute two sequences deep."""
PRIVATE_CREATOR = 0x00090010
PRIVATE_GROUP = 0x0009
UID_ROOT = "1.2.826.0.1.3680043.10.999."
FIRST_DATE = date(1950, 1, 1)


@dataclass(frozen=True)
class Marker:
    """A value put into the corpus.

    Attributes:
        tag: the attribute (for a masked row, the tag used: (60XX,3000) → (6000,3000)).
        row: the Table E.1-1 row's tag text, or "private".
        depth: 0 at the top level, 2 inside the two carrier sequences.
        vr: the value representation written.
        text: the value as it is encoded (searchable in the bytes).
    """

    tag: int
    row: str
    depth: int
    vr: str
    text: bytes


def _vr(tag: int) -> str:
    return dictionary_VR(tag).split(" or ")[0]


def _value(vr: str, n: int) -> tuple[object, bytes]:
    """A value of ``vr`` unique to ``n``, and its encoded bytes."""
    code = f"{n:05d}"
    if vr in ("LO", "LT", "ST", "UT", "UC", "SH"):
        text = f"MK{code}{vr}"
    elif vr == "CS":
        text = f"MK{code}CS"
    elif vr == "AE":
        text = f"MK{code}AE"
    elif vr == "PN":
        text = f"MK{code}^PN"
    elif vr == "UI":
        text = f"{UID_ROOT}1{code}"
    elif vr == "DA":
        text = (FIRST_DATE + timedelta(days=7 * n)).strftime("%Y%m%d")
    elif vr == "DT":
        text = (FIRST_DATE + timedelta(days=7 * n)).strftime("%Y%m%d") + f"120000.{code}1-0500"
    elif vr == "TM":
        text = f"120000.{code}1"
    elif vr == "AS":
        text = f"{n % 1000:03d}Y"
    elif vr == "IS":
        text = f"-27{code}"
    elif vr == "DS":
        text = f"-27.{code}1"
    elif vr == "UR":
        text = f"http://mk/{code}"
    elif vr in ("US", "SS"):
        return 40000 + n if vr == "US" else -n, (40000 + n if vr == "US" else -n).to_bytes(2, "little", signed=vr == "SS")
    elif vr in ("UL", "SL"):
        return 0x4D4B0000 + n, (0x4D4B0000 + n).to_bytes(4, "little")
    elif vr in ("FL", "FD"):
        return float(-n - 0.25), b""
    else:
        raw = f"MK{code}{vr or 'OB'}".encode()
        raw += b"\0" * (len(raw) % 2)
        return raw, raw
    return text, text.encode()


def _nested_holder() -> int:
    """A Table E.1-1 attribute (LO) the Basic Profile removes under every option: the
    content of each sequence of the table in the corpus."""
    for row in load_table().rows:
        if row.basic == "X" and not row.options and "X" not in row.tag and row.tag != PRIVATE_ROW:
            tag = int(row.tag.strip("()").replace(",", ""), 16)
            if _vr(tag) == "LO":
                return tag
    raise LookupError("no LO attribute that is always removed")


def _fill(dataset: Dataset, depth: int, counter: list[int], markers: list[Marker]) -> None:
    holder = _nested_holder()
    for row in load_table().rows:
        if row.tag == PRIVATE_ROW:
            continue
        tag = int(row.tag.strip("()").replace(",", "").replace("X", "0"), 16)
        if tag >> 16 < 0x0008:
            continue
        vr = _vr(tag) if "X" not in row.tag else ("OB" if tag >> 16 == 0x5000 else _vr(tag))
        counter[0] += 1
        n = counter[0]
        if vr == "SQ":
            item = Dataset()
            value, text = _value("LO", n)
            item.add_new(holder, "LO", value)
            dataset.add_new(tag, "SQ", Sequence([item]))
            markers.append(Marker(tag, row.tag, depth, "SQ", text))
            continue
        value, text = _value(vr, n)
        dataset.add_new(tag, vr, value)
        markers.append(Marker(tag, row.tag, depth, vr, text))
    dataset.add_new(PRIVATE_CREATOR, "LO", "MKPRIVATECREATOR")
    for element, vr in ((0x1001, "LO"), (0x1002, "UN"), (0x1003, "UI")):
        counter[0] += 1
        value, text = _value(vr, counter[0])
        dataset.add_new(PRIVATE_GROUP << 16 | element, vr, value)
        markers.append(Marker(PRIVATE_GROUP << 16 | element, "private", depth, vr, text))


def marker_instance() -> tuple[Dataset, list[Marker]]:
    """The corpus instance (a small CT, Explicit VR Little Endian) and every marker in
    it. The rows of groups 0000 (command), 0002 (file meta: the Media Storage SOP
    Instance UID is the SOP Instance UID's marker) and 0004 (DICOMDIR) are not repeated."""
    markers: list[Marker] = []
    counter = [0]
    dataset = Dataset()
    _fill(dataset, 0, counter, markers)
    inner = Dataset()
    _fill(inner, 2, counter, markers)
    outer_item = Dataset()
    outer_item.add_new(CARRIERS[1], "SQ", Sequence([inner]))
    dataset.add_new(CARRIERS[0], "SQ", Sequence([outer_item]))
    dataset.SOPClassUID = CTImageStorage
    dataset.Modality = "CT"
    dataset.Rows = dataset.Columns = 4
    dataset.BitsAllocated = dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.SamplesPerPixel = 1
    dataset.PixelRepresentation = 0
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.PixelData = bytes(range(32))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.SourceApplicationEntityTitle = "MKSOURCEAE"
    dataset.file_meta = meta
    return dataset, markers
