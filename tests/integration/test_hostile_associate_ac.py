"""pacskit as association requestor against an SCP that answers with a malformed
A-ASSOCIATE-AC (PS3.8 9.3.3, 9.3.1): ``pacskit echo`` (and AsyncClient.echo) aborts the
association (A-ABORT, service provider, invalid PDU parameter value, PS3.8 9.3.8), exits
with the aborted-association code and one line saying what was wrong; an AC with items of
unknown types is read with them skipped and the echo succeeds."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from async_runner import run_async
from clirunner import assert_one_line_error, run_cli
from raw_acceptor import RawAcceptor
from raw_pdu import (
    A_ABORT_PDU,
    A_RELEASE_RQ_PDU,
    INVALID_PDU_PARAMETER_VALUE,
    SERVICE_PROVIDER,
    VERIFICATION,
    Abort,
    release_rp,
)

from pacskit.net.commands import c_echo_rsp

ABORTED = 15


def items(pdu: bytes) -> list[bytes]:
    found, offset = [], 74
    while offset < len(pdu):
        length = struct.unpack_from(">H", pdu, offset + 2)[0]
        found.append(pdu[offset:offset + 4 + length])
        offset += 4 + length
    return found


def rebuilt(pdu: bytes, parts: list[bytes]) -> bytes:
    body = b"".join(parts)
    return pdu[:2] + struct.pack(">I", 68 + len(body)) + pdu[6:74] + body


def item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def on_context(change: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    return lambda pdu: rebuilt(pdu, [change(i) if i[0] == 0x21 else i for i in items(pdu)])


def length_field_short(pdu: bytes) -> bytes:
    return pdu[:2] + struct.pack(">I", len(pdu) - 6 - 9) + pdu[6:]


def user_information_overrun(pdu: bytes) -> bytes:
    parts = items(pdu)
    last = parts[-1]
    parts[-1] = last[:2] + struct.pack(">H", len(last) - 4 + 200) + last[4:]
    return rebuilt(pdu, parts)


def duplicate_context(pdu: bytes) -> bytes:
    parts = items(pdu)
    return rebuilt(pdu, [*parts[:2], parts[1], *parts[2:]])


def zero_max_length_sub_item(pdu: bytes) -> bytes:
    parts = items(pdu)
    user = parts[-1]
    subs, offset = [], 4
    while offset < len(user):
        length = struct.unpack_from(">H", user, offset + 2)[0]
        sub = user[offset:offset + 4 + length]
        subs.append(item(0x51, b"") if sub[0] == 0x51 else sub)
        offset += 4 + length
    return rebuilt(pdu, [*parts[:-1], item(0x50, b"".join(subs))])


def truncated(pdu: bytes) -> bytes:
    cut = pdu[:len(pdu) - 7]
    return cut[:2] + struct.pack(">I", len(cut) - 6) + cut[6:]


def unknown_items(pdu: bytes) -> bytes:
    parts = items(pdu)
    user = parts[-1]
    noisy_user = item(0x50, item(0x6E, b"\x01\x02") + user[4:])
    return rebuilt(pdu, [item(0x7A, b"not a DICOM item"), *parts[:-1], noisy_user, item(0xFE, b"")])


MALFORMED = {
    "PDU-length field shorter than the PDU": (length_field_short, "runs past the end"),
    "user information item overruns the PDU": (user_information_overrun, "runs past the end"),
    "truncated inside an item": (truncated, "runs past the end"),
    "accepted with a zero-length transfer syntax": (on_context(lambda i: item(0x21, i[4:8] + item(0x40, b""))),
                                                    "is not a UID"),
    "overlong transfer syntax sub-item": (on_context(lambda i: i[:10] + b"\x01\x00" + i[12:]),
                                          "runs past the end of presentation context item"),
    "duplicate presentation context": (duplicate_context, "two presentation context items with ID 1"),
    "context ID never proposed": (on_context(lambda i: i[:4] + b"\x07" + i[5:]),
                                  "answers presentation context 7, which was not proposed"),
    "maximum length sub-item of 0 bytes": (zero_max_length_sub_item, "maximum length sub-item of 0 bytes"),
}

both_drivers = pytest.mark.parametrize("run", [run_cli, run_async], ids=["command", "asyncio"])


@both_drivers
@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_associate_ac_is_aborted_with_one_line(run, case):
    damage, why = MALFORMED[case]
    notes: dict[str, object] = {}

    def script(conversation):
        notes["after"] = conversation.link.read_pdu(10)

    with RawAcceptor("BADAC", script, damage=damage) as peer:
        result = run("echo", peer.address)
        assert peer.finished.wait(15) and not peer.errors, peer.errors
    received = notes["after"]
    assert received is not None and received[0] == A_ABORT_PDU, received
    abort = Abort.parse(received[1])
    assert (abort.source, abort.reason) == (SERVICE_PROVIDER, INVALID_PDU_PARAMETER_VALUE), abort
    assert_one_line_error(result, ABORTED, "malformed A-ASSOCIATE-AC")
    assert why in result.stderr, result.stderr


@both_drivers
def test_items_of_unknown_types_are_skipped_and_the_echo_succeeds(run):
    notes: dict[str, object] = {}

    def script(conversation):
        request = conversation.link.read_message(5)
        conversation.link.send_message(request.context_id, c_echo_rsp(request.message_id or 0, VERIFICATION, 0))
        notes["release"] = conversation.link.read_pdu(5)
        conversation.link.send(release_rp())

    with RawAcceptor("NOISY", script, damage=unknown_items) as peer:
        result = run("echo", peer.address)
        assert peer.finished.wait(15) and not peer.errors, peer.errors
    assert result.returncode == 0, result.stderr
    assert notes["release"] is not None and notes["release"][0] == A_RELEASE_RQ_PDU
