"""Mutated DICOM conversations for fuzzing an acceptor on a raw socket.

The valid conversation is five PDUs (PS3.8 9.3): an A-ASSOCIATE-RQ proposing
Verification (context 1) and CT Image Storage (context 3), both Implicit VR Little
Endian; a P-DATA-TF with a C-ECHO-RQ; a P-DATA-TF with a C-STORE-RQ command; a P-DATA-TF
with its dataset in two fragments; an A-RELEASE-RQ. Case ``n`` of seed ``s`` is that
conversation, for an instance UID of its own, with one mutation chosen by
``random.Random(f"{s}:{n}")`` — so any case can be replayed alone::

    python tests/integration/fuzz_cases.py --seed 20240611 --case 417 --port 11112 [--show]
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom import Dataset
from pydicom.uid import CTImageStorage, ImplicitVRLittleEndian
from pynetdicom.dsutils import encode
from pynetdicom.pdu import A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification

from pacskit.net.commands import (
    AFFECTED_SOP_INSTANCE_UID,
    C_STORE_RSP,
    COMMAND_FIELD,
    STATUS,
    c_echo_rq,
    c_store_rq,
    us,
)
from pacskit.net.wire import parse_command

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
ECHO_CONTEXT, STORE_CONTEXT = 1, 3
CALLING_AET, CALLED_AET = "FUZZER", "ARCHIVE"
UID_ROOT = "2.25.31415926535897932384626433"
STUDY_UID, SERIES_UID = f"{UID_ROOT}.1", f"{UID_ROOT}.2"
MAX_PDU = 16384
SEGMENTS = ("associate-rq", "echo", "store-command", "store-data", "release-rq")
PDU_TYPES = (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x00, 0x08, 0xFF)
ITEM_TYPES = (0x10, 0x20, 0x21, 0x30, 0x40, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x00, 0xFF)
SUCCESS = 0x0000


def instance_uid(case: int) -> str:
    """The SOP Instance UID of case ``case`` (the same length for every case below 900000)."""
    return f"{UID_ROOT}.3.{100000 + case}"


def associate_rq() -> bytes:
    """The A-ASSOCIATE-RQ PDU, encoded by pynetdicom from a primitive."""
    contexts = []
    for context_id, abstract in ((ECHO_CONTEXT, Verification), (STORE_CONTEXT, CTImageStorage)):
        context = PresentationContext()
        context.context_id = context_id
        context.abstract_syntax = abstract
        context.transfer_syntax = [ImplicitVRLittleEndian]
        contexts.append(context)
    maximum = MaximumLengthNotification()
    maximum.maximum_length_received = MAX_PDU
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = f"{UID_ROOT}.9"
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = CALLING_AET
    primitive.called_ae_title = CALLED_AET
    primitive.presentation_context_definition_list = contexts
    primitive.user_information = [maximum, implementation]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return bytes(pdu.encode())


def small_ct(sop_instance_uid: str) -> bytes:
    """A 4×4 CT instance, Implicit VR Little Endian, without a patient name."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.PatientID = "FUZZ"
    ds.Modality = "CT"
    ds.StudyDate = "20240611"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(32))
    encoded = encode(ds, True, True)
    assert encoded is not None
    return bytes(encoded)


def pdv(context_id: int, control: int, value: bytes) -> bytes:
    return struct.pack(">IBB", len(value) + 2, context_id, control) + value


def pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def conversation(case: int) -> list[bytes]:
    """The valid PDUs of case ``case``, in the order of :data:`SEGMENTS`."""
    sop_instance = instance_uid(case)
    data = small_ct(sop_instance)
    half = len(data) // 2
    return [
        associate_rq(),
        pdu(0x04, pdv(ECHO_CONTEXT, 0x03, c_echo_rq(1))),
        pdu(0x04, pdv(STORE_CONTEXT, 0x03, c_store_rq(2, CTImageStorage, sop_instance))),
        pdu(0x04, pdv(STORE_CONTEXT, 0x00, data[:half]) + pdv(STORE_CONTEXT, 0x02, data[half:])),
        pdu(0x05, b"\0\0\0\0"),
    ]


@dataclass(frozen=True)
class Field:
    """A field of a PDU worth mutating: its kind, offset and width in bytes."""

    kind: str
    offset: int
    width: int


def fields(segment: str, raw: bytes) -> list[Field]:
    """The structural fields of one valid PDU: its type and length, and within it the
    items of an A-ASSOCIATE-RQ (PS3.8 9.3.2) or the PDVs of a P-DATA-TF (9.3.5) and the
    element lengths of a command set."""
    found = [Field("pdu-type", 0, 1), Field("pdu-length", 2, 4)]
    if segment == "associate-rq":
        found += [Field("protocol-version", 6, 2), Field("called-ae", 10, 16), Field("calling-ae", 26, 16)]
        found += _items(raw, 74, len(raw))
    elif raw[0] == 0x04:
        pos = 6
        while pos + 6 <= len(raw):
            length = struct.unpack_from(">I", raw, pos)[0]
            found += [Field("pdv-length", pos, 4), Field("pdv-context-id", pos + 4, 1),
                      Field("pdv-control", pos + 5, 1)]
            if raw[pos + 5] & 0x01:
                found += _command_elements(raw, pos + 6, pos + 4 + length)
            pos += 4 + length
    return found


def _items(raw: bytes, start: int, end: int) -> list[Field]:
    found = []
    pos = start
    while pos + 4 <= end:
        item_type, length = raw[pos], struct.unpack_from(">H", raw, pos + 2)[0]
        found += [Field("item-type", pos, 1), Field("item-length", pos + 2, 2)]
        if item_type == 0x20:
            found.append(Field("context-id", pos + 4, 1))
            found += _items(raw, pos + 8, pos + 4 + length)
        elif item_type == 0x50:
            found += _items(raw, pos + 4, pos + 4 + length)
        elif item_type == 0x51:
            found.append(Field("max-length-value", pos + 4, 4))
        pos += 4 + length
    return found


def _command_elements(raw: bytes, start: int, end: int) -> list[Field]:
    found = []
    pos = start
    while pos + 8 <= end:
        length = struct.unpack_from("<I", raw, pos + 4)[0]
        found += [Field("element-tag", pos + 2, 2), Field("element-length", pos + 4, 4)]
        if length == 2:
            found.append(Field("element-us-value", pos + 8, 2))
        pos += 8 + length
    return found


def _lengths(width: int, current: int) -> list[int]:
    top = (1 << (8 * width)) - 1
    return [0, 1, top, top >> 1, max(0, current - 1), min(top, current + 1), min(top, current + 2)]


Mutator = Callable[[random.Random, str, bytes], tuple[bytes, str]]


def flip_bits(rng: random.Random, segment: str, raw: bytes) -> tuple[bytes, str]:
    out = bytearray(raw)
    flips = [(rng.randrange(len(raw)), rng.randrange(8)) for _ in range(rng.choice((1, 1, 2, 4)))]
    for pos, bit in flips:
        out[pos] ^= 1 << bit
    return bytes(out), "flip " + ", ".join(f"bit {bit} of byte {pos}" for pos, bit in flips)


def insert_bytes(rng: random.Random, segment: str, raw: bytes) -> tuple[bytes, str]:
    pos = rng.randrange(len(raw) + 1)
    extra = bytes(rng.randrange(256) for _ in range(rng.choice((1, 2, 4, 8))))
    return raw[:pos] + extra + raw[pos:], f"insert {extra.hex()} at byte {pos}"


def delete_bytes(rng: random.Random, segment: str, raw: bytes) -> tuple[bytes, str]:
    pos = rng.randrange(len(raw))
    count = rng.choice((1, 2, 4, 8))
    return raw[:pos] + raw[pos + count:], f"delete {count} bytes at byte {pos}"


def truncate(rng: random.Random, segment: str, raw: bytes) -> tuple[bytes, str]:
    pos = rng.randrange(len(raw))
    return raw[:pos], f"truncate to {pos} bytes (and send nothing after)"


def set_length(rng: random.Random, segment: str, raw: bytes) -> tuple[bytes, str]:
    candidates = [f for f in fields(segment, raw) if "length" in f.kind]
    target = rng.choice(candidates)
    fmt = {1: ">B", 2: ">H", 4: ">I"}[target.width]
    if target.kind == "element-length":
        fmt = "<I"
    current = struct.unpack_from(fmt, raw, target.offset)[0]
    value = rng.choice(_lengths(target.width, current))
    out = bytearray(raw)
    struct.pack_into(fmt, out, target.offset, value)
    return bytes(out), f"{target.kind} at byte {target.offset}: {current} -> {value}"


def set_field(rng: random.Random, segment: str, raw: bytes) -> tuple[bytes, str]:
    candidates = [f for f in fields(segment, raw) if "length" not in f.kind]
    target = rng.choice(candidates)
    out = bytearray(raw)
    if target.kind == "pdu-type":
        value = rng.choice([t for t in PDU_TYPES if t != raw[0]])
    elif target.kind == "item-type":
        value = rng.choice([t for t in ITEM_TYPES if t != raw[target.offset]])
    elif target.kind in ("pdv-context-id", "context-id"):
        value = rng.choice((0, 2, 5, 255, ECHO_CONTEXT if raw[target.offset] == STORE_CONTEXT else STORE_CONTEXT))
    elif target.kind == "pdv-control":
        value = rng.choice([c for c in (0x00, 0x01, 0x02, 0x03, 0x04, 0xFF) if c != raw[target.offset]])
    else:
        value = rng.randrange(256)
    if target.width == 1:
        out[target.offset] = value
        what = f"0x{value:02X}"
    else:
        chunk = bytes(rng.choice((0x00, 0x20, 0xFF, value)) for _ in range(target.width))
        out[target.offset:target.offset + target.width] = chunk
        what = chunk.hex()
    return bytes(out), f"{target.kind} at byte {target.offset} set to {what}"


MUTATORS: dict[str, Mutator] = {
    "flip": flip_bits, "insert": insert_bytes, "delete": delete_bytes, "truncate": truncate,
    "length": set_length, "field": set_field,
}
WEIGHTS = {"flip": 3, "insert": 1, "delete": 1, "truncate": 1, "length": 3, "field": 3}


@dataclass(frozen=True)
class Case:
    """One mutated conversation: what was mutated, and the bytes to send."""

    number: int
    segment: str
    mutation: str
    stream: bytes

    @property
    def description(self) -> str:
        return f"case {self.number}: {self.segment} PDU, {self.mutation}"


def case(seed: int, number: int) -> Case:
    """Case ``number`` of ``seed``: the valid conversation with one mutation (or, one
    case in 16, a structural one: a PDU repeated, dropped or two swapped)."""
    rng = random.Random(f"{seed}:{number}")
    segments = conversation(number)
    index = rng.randrange(len(segments))
    if rng.randrange(16) == 0:
        other = rng.randrange(len(segments))
        action = rng.choice(("repeat", "drop", "swap"))
        if action == "repeat":
            segments.insert(index, segments[index])
            what = "sent twice"
        elif action == "drop":
            del segments[index]
            what = "left out"
        else:
            segments[index], segments[other] = segments[other], segments[index]
            what = f"swapped with the {SEGMENTS[other]} PDU"
        return Case(number, SEGMENTS[index], what, b"".join(segments))
    name = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    mutated, what = MUTATORS[name](rng, SEGMENTS[index], segments[index])
    rest = [] if name == "truncate" else segments[index + 1:]
    return Case(number, SEGMENTS[index], what, b"".join([*segments[:index], mutated, *rest]))


@dataclass
class Exchange:
    """What came back for one case."""

    received: bytes = b""
    closed: bool = False
    reset: bool = False
    acknowledged: list[str] = field(default_factory=list)
    pdu_types: list[int] = field(default_factory=list)
    seconds: float = 0.0


def play(stream: bytes, port: int, deadline: float) -> Exchange:
    """Send ``stream`` on a fresh connection, then half-close it, and read until the
    server closes its side or ``deadline`` seconds pass (then ``closed`` stays False)."""
    result = Exchange()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=deadline) as sock:
        try:
            sock.sendall(stream)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            result.reset = True
        chunks = []
        while True:
            left = deadline - (time.monotonic() - started)
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                result.reset = result.closed = True
                break
            if not chunk:
                result.closed = True
                break
            chunks.append(chunk)
    result.received = b"".join(chunks)
    result.seconds = time.monotonic() - started
    result.pdu_types, result.acknowledged = _answers(result.received)
    return result


def _answers(raw: bytes) -> tuple[list[int], list[str]]:
    """The types of the PDUs in ``raw``, and the SOP Instance UIDs of the C-STORE-RSPs
    with status Success among them."""
    types, acknowledged = [], []
    pos = 0
    while pos + 6 <= len(raw):
        pdu_type, length = raw[pos], struct.unpack_from(">I", raw, pos + 2)[0]
        body = raw[pos + 6:pos + 6 + length]
        types.append(pdu_type)
        if pdu_type == 0x04:
            item = 0
            while item + 6 <= len(body):
                item_length = struct.unpack_from(">I", body, item)[0]
                if body[item + 5] & 0x01:
                    command = parse_command(body[item + 6:item + 4 + item_length])
                    status = command.get(STATUS, b"\xff\xff")
                    if (command.get(COMMAND_FIELD) == us(C_STORE_RSP)
                            and struct.unpack("<H", status[:2])[0] == SUCCESS):
                        acknowledged.append(command[AFFECTED_SOP_INSTANCE_UID].rstrip(b"\0").decode())
                item += 4 + item_length
        pos += 6 + length
    return types, acknowledged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay one fuzz case against a server on loopback.")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--case", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deadline", type=float, default=10.0)
    parser.add_argument("--show", action="store_true", help="print the bytes sent")
    args = parser.parse_args(argv)
    chosen = case(args.seed, args.case)
    print(chosen.description)
    if args.show:
        print(chosen.stream.hex(" ", 16))
    exchange = play(chosen.stream, args.port, args.deadline)
    print(f"{exchange.seconds:.3f} s, closed={exchange.closed}, reset={exchange.reset}, "
          f"PDUs back: {[hex(t) for t in exchange.pdu_types]}, acknowledged: {exchange.acknowledged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
