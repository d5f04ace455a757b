"""Instances that hide patient names where a byte-level reader may not look, written
byte by byte (Explicit VR Little Endian), for tests that prove the names are withheld:

- ``un-undefined``: a private sequence sent as UN of undefined length, its items in
  Implicit VR Little Endian (PS3.5 6.2.2), a PatientName inside;
- ``un-defined``: the same as UN of defined length — which pydicom leaves as bytes — with
  a defined- and an undefined-length item, names in both, and one more UN sequence nested
  inside the second holding a PatientBirthName;
- ``wrong-vr``: names sent with the VR of a number or a UID (IS, FD, UI), whose
  conversion makes pydicom warn or fail quoting the value, one of them in a sequence;
- ``after-pixels``: a UN sequence with a name after 128 KiB of pixel data, in a private
  group of its own (as 7FE1 is used);
- ``unreadable``: a UN whose value starts as a sequence but is cut short, with the bytes
  of a PatientName element in it;
- ``big-endian``: in Explicit VR Big Endian, a UN sequence of defined length — its items
  still little endian (PS3.5 6.2.2) — with a name inside.

Every name holds the marker ``Hidden``; every private value that is not a name starts
with ``KEEP-`` and must arrive unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pacskit.encoded import file_meta

NAME_MARKER = b"Hidden"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
UID_ROOT = "1.2.826.0.1.3680043.10.1234.88"
CREATOR = b"PACSKIT TEST"
VARIANTS = ("un-undefined", "un-defined", "wrong-vr", "after-pixels", "unreadable", "big-endian")
_LONG = frozenset({b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR"})
_Parts = tuple[tuple[bytes, ...], tuple[bytes, ...], dict[str, bytes]]
"""A variant's names, its kept values, and its elements by where they go: ``private``
(group 0009), ``name`` (instead of a plain PatientName), ``patient`` (after PatientID),
``after`` (after the pixel data)."""


@dataclass(frozen=True)
class HiddenNames:
    """One crafted instance: its file, and what must and must not arrive of it."""

    variant: str
    path: Path
    sop_instance_uid: str
    names: tuple[bytes, ...]
    kept: tuple[bytes, ...]
    pixel_data: bytes


def craft_hidden_names(out_dir: Path | str, patient_id: str = "HIDDEN01") -> list[HiddenNames]:
    """Write one instance of each of :data:`VARIANTS` into ``out_dir`` (one study, one
    series, patient ``patient_id``) and describe them."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    made = []
    for number, variant in enumerate(VARIANTS, 1):
        uid = f"{UID_ROOT}.3.{number}"
        names, kept, parts = _VARIANT_BUILDERS[variant]()
        top_name = b"Hidden^Top" + variant.split("-")[-1].capitalize().encode()
        if "name" not in parts:
            parts["name"] = _explicit(0x00100010, b"PN", top_name, _order(variant))
            names = (top_name, *names)
        big = variant == "after-pixels"
        pixels = bytes((i * 7) % 251 for i in range(256 * 256 * 2)) if big else bytes(range(16))
        syntax = EXPLICIT_VR_BIG_ENDIAN if _order(variant) == ">" else EXPLICIT_VR_LITTLE_ENDIAN
        path = root / f"{variant}.dcm"
        path.write_bytes(file_meta(SECONDARY_CAPTURE, uid, syntax)
                         + _dataset(uid, number, patient_id, pixels, parts, _order(variant)))
        made.append(HiddenNames(variant, path, uid, names, kept, pixels))
    return made


def _order(variant: str) -> str:
    return ">" if variant == "big-endian" else "<"


def _dataset(uid: str, number: int, patient_id: str, pixels: bytes, parts: dict[str, bytes],
             order: str) -> bytes:
    side = 256 if len(pixels) > 16 else 4
    bits = 16 if side == 256 else 8

    def us(value: int) -> bytes:
        return struct.pack(order + "H", value)

    elements: list[str | tuple[int, bytes, bytes]] = [
        (0x00080005, b"CS", b"ISO_IR 100"),
        (0x00080016, b"UI", SECONDARY_CAPTURE.encode()),
        (0x00080018, b"UI", uid.encode()),
        (0x00080020, b"DA", b"20240102"),
        (0x00080060, b"CS", b"OT"),
        (0x00090010, b"LO", CREATOR),
        "private",
        "name",
        (0x00100020, b"LO", patient_id.encode()),
        "patient",
        (0x0020000D, b"UI", f"{UID_ROOT}.1".encode()),
        (0x0020000E, b"UI", f"{UID_ROOT}.2".encode()),
        (0x00200013, b"IS", str(number).encode()),
        (0x00280002, b"US", us(1)),
        (0x00280004, b"CS", b"MONOCHROME2"),
        (0x00280010, b"US", us(side)),
        (0x00280011, b"US", us(side)),
        (0x00280100, b"US", us(bits)),
        (0x00280101, b"US", us(bits)),
        (0x00280102, b"US", us(bits - 1)),
        (0x00280103, b"US", us(0)),
        (0x7FE00010, b"OW" if bits == 16 else b"OB", pixels),
        "after",
    ]
    return b"".join(parts.get(e, b"") if isinstance(e, str) else _explicit(*e, order) for e in elements)


def _un_undefined() -> _Parts:
    name = b"Hidden^Undefined"
    item = _item(_implicit(0x00090010, CREATOR) + _implicit(0x00091020, b"KEEP-A1")
                 + _implicit(0x00100010, name), defined=False)
    return (name,), (b"KEEP-A1",), {"private": _un(0x00091010, item, defined=False)}


def _un_defined() -> _Parts:
    names = (b"Hidden^Defined", b"Hidden^Other", "Hidden^Müller".encode("latin-1"))
    nested = _item(_implicit(0x00090010, CREATOR) + _implicit(0x00091024, b"KEEP-B3")
                   + _implicit(0x00101005, names[2]))
    first = _item(_implicit(0x00090010, CREATOR) + _implicit(0x00091021, b"KEEP-B1")
                  + _implicit(0x00100010, names[0]) + _implicit(0x00101001, names[1]))
    second = _item(_implicit(0x00090010, CREATOR) + _implicit(0x00091022, b"KEEP-B2")
                   + _implicit(0x00091023, nested), defined=False)
    return names, (b"KEEP-B1", b"KEEP-B2", b"KEEP-B3"), {"private": _un(0x00091011, first + second)}


def _wrong_vr() -> _Parts:
    names = (b"Hidden^Nested1", b"Hidden^Wrongvr", b"Hidden^Mother")
    item = _item(_explicit(0x00090010, b"LO", CREATOR) + _explicit(0x00091025, b"LO", b"KEEP-C1")
                 + _explicit(0x00100010, b"UI", names[0]))
    # PatientName as IS, PatientMotherBirthName as FD (14 bytes: not a whole number of values)
    return names, (b"KEEP-C1",), {"private": _explicit(0x00091012, b"SQ", item),
                                  "name": _explicit(0x00100010, b"IS", names[1]),
                                  "patient": _explicit(0x00101060, b"FD", names[2] + b" ")}


def _after_pixels() -> _Parts:
    name = b"Hidden^After"
    item = _item(_implicit(0x7FE10010, CREATOR) + _implicit(0x7FE11020, b"KEEP-D1")
                 + _implicit(0x00100010, name))
    return (name,), (b"KEEP-D1",), {"after": _explicit(0x7FE10010, b"LO", CREATOR) + _un(0x7FE11010, item)}


def _unreadable() -> _Parts:
    name = b"Hidden^Broken"
    body = _implicit(0x00090010, CREATOR) + _implicit(0x00100010, name)
    cut = struct.pack("<HHI", 0xFFFE, 0xE000, len(body) + 40) + body
    return (name,), (b"KEEP-E1",), {"private": _un(0x00091013, cut) + _explicit(0x00091014, b"LO", b"KEEP-E1")}


def _big_endian() -> _Parts:
    name = b"Hidden^Bigendian"
    item = _item(_implicit(0x00090010, CREATOR) + _implicit(0x00091026, b"KEEP-F1")
                 + _implicit(0x00100010, name))
    return (name,), (b"KEEP-F1",), {"private": _un(0x00091015, item, order=">")}


_VARIANT_BUILDERS: dict[str, Callable[[], _Parts]] = {
    "un-undefined": _un_undefined,
    "un-defined": _un_defined,
    "wrong-vr": _wrong_vr,
    "after-pixels": _after_pixels,
    "unreadable": _unreadable,
    "big-endian": _big_endian,
}


def _padded(value: bytes, vr: bytes) -> bytes:
    return value + (b"\0" if vr == b"UI" else b" ") if len(value) % 2 else value


def _explicit(tag: int, vr: bytes, value: bytes, order: str = "<") -> bytes:
    value = _padded(value, vr)
    head = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF) + vr
    if vr in _LONG:
        return head + b"\0\0" + struct.pack(order + "I", len(value)) + value
    return head + struct.pack(order + "H", len(value)) + value


def _implicit(tag: int, value: bytes) -> bytes:
    value = _padded(value, b"")
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def _item(body: bytes, *, defined: bool = True) -> bytes:
    if defined:
        return struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body
    return (struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + body
            + struct.pack("<HHI", 0xFFFE, 0xE00D, 0))


def _un(tag: int, items: bytes, *, defined: bool = True, order: str = "<") -> bytes:
    head = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF) + b"UN\0\0"
    if defined:
        return head + struct.pack(order + "I", len(items)) + items
    return head + struct.pack("<I", 0xFFFFFFFF) + items + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
