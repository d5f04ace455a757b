"""Malformed A-ASSOCIATE-ACs (PS3.8 9.3.3, 9.3.1): each is refused with
:class:`ProtocolViolation` saying what is wrong (the association code answers it with
A-ABORT), never an IndexError or struct.error, and never a loop; unknown items are skipped."""

from __future__ import annotations

import random
import struct

import pytest

from pacskit.net.assembly import ProtocolViolation
from pacskit.net.ul.associate_ac import Rejection, decode_ac
from pacskit.net.ul.associate_rq import ProposedContext, item
from pacskit.net.ul.negotiation import Proposal, read_acceptance

IMPLICIT = b"1.2.840.10008.1.2"
VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"


def ac(*items: bytes, length: int | None = None) -> bytes:
    body = b"".join(items)
    return struct.pack(">BBIHH16s16s32s", 0x02, 0, 68 + len(body) if length is None else length, 1, 0,
                       b"ARCHIVE".ljust(16), b"PACSKIT".ljust(16), b"") + body


def application_context() -> bytes:
    return item(0x10, b"1.2.840.10008.3.1.1.1")


def context(context_id: int = 1, result: int = 0, syntax: bytes = IMPLICIT) -> bytes:
    return item(0x21, bytes((context_id, 0, result, 0)) + item(0x40, syntax))


def user_information(*sub_items: bytes) -> bytes:
    return item(0x50, b"".join(sub_items or (maximum(16384), item(0x52, b"1.2.3.4"))))


def maximum(value: int) -> bytes:
    return item(0x51, struct.pack(">I", value))


def role(uid: str, scu: int, scp: int) -> bytes:
    return item(0x54, struct.pack(">H", len(uid)) + uid.encode() + bytes((scu, scp)))


ITEMS = [application_context(), context(1), context(3, 3), user_information()]
GOOD = ac(*ITEMS)
BOUNDARIES = {74 + sum(len(i) for i in ITEMS[:n]) for n in range(len(ITEMS) + 1)}


def proposal() -> Proposal:
    proposed = Proposal("PACSKIT", "ARCHIVE", [], 16384)
    proposed.numbered = [ProposedContext(1, VERIFICATION, ("1.2.840.10008.1.2",)),
                         ProposedContext(3, CT, ("1.2.840.10008.1.2",), True, True)]
    return proposed


def test_the_well_formed_answer_reads():
    negotiated = read_acceptance(GOOD, proposal())
    assert list(negotiated.contexts) == [1] and [cx.result for cx in negotiated.refused] == [3]
    assert negotiated.peer_max_pdu == 16384 and negotiated.peer_implementation == ("1.2.3.4", "")


@pytest.mark.parametrize("size", range(len(GOOD)))
def test_every_truncation_is_refused(size):
    with pytest.raises(ProtocolViolation):
        decode_ac(GOOD[:size])


@pytest.mark.parametrize("size", sorted(set(range(74, len(GOOD))) - BOUNDARIES))
def test_every_truncation_inside_an_item_is_refused_though_the_pdu_length_agrees(size):
    cut = bytearray(GOOD[:size])
    struct.pack_into(">I", cut, 2, size - 6)
    with pytest.raises(ProtocolViolation, match="ends inside an item header|runs past the end"):
        decode_ac(bytes(cut))


@pytest.mark.parametrize("lie", [-1, 1, 1000, -(len(GOOD) - 6), 0xFFFFFFFF - len(GOOD)])
def test_a_pdu_length_field_that_lies_is_refused(lie):
    lying = bytearray(GOOD)
    struct.pack_into(">I", lying, 2, len(GOOD) - 6 + lie)
    with pytest.raises(ProtocolViolation, match="PDU-length field says"):
        decode_ac(bytes(lying))


MALFORMED = {
    "user information item overruns the PDU":
        (ac(application_context(), context(), item(0x50, maximum(16384))[:-4]), "runs past the end"),
    "item length overruns the PDU": (ac(application_context(), context()[:2] + b"\xff\xff" + context()[4:]),
                                     "runs past the end of the A-ASSOCIATE-AC"),
    "sub-item overruns its item": (ac(application_context(), item(0x21, b"\x01\x00\x00\x00\x40\x00\x00\x40" + IMPLICIT),
                                      user_information()), "runs past the end of presentation context item 1"),
    "accepted with an empty transfer syntax": (ac(application_context(), context(syntax=b""), user_information()),
                                               "is not a UID"),
    "accepted without a transfer syntax sub-item":
        (ac(application_context(), item(0x21, b"\x01\x00\x00\x00"), user_information()), "without a transfer syntax"),
    "overlong transfer syntax": (ac(application_context(), context(syntax=b"1." * 40), user_information()),
                                 "is not a UID"),
    "transfer syntax not a UID": (ac(application_context(), context(syntax=b"1.2.840\x00.x"), user_information()),
                                  "is not a UID"),
    "transfer syntax with an empty component": (ac(application_context(), context(syntax=b"1.2..840"),
                                                   user_information()), "is not a UID"),
    "two transfer syntax sub-items":
        (ac(application_context(), item(0x21, b"\x01\x00\x00\x00" + item(0x40, IMPLICIT) * 2), user_information()),
         "2 transfer syntax sub-items"),
    "presentation context item shorter than its fixed fields":
        (ac(application_context(), item(0x21, b"\x01\x00"), user_information()), "shorter than its 4 fixed"),
    "result not of Table 9-18": (ac(application_context(), context(result=7), user_information()), "result 7"),
    "maximum length sub-item of 0 bytes": (ac(application_context(), context(), user_information(item(0x51, b""))),
                                           "maximum length sub-item of 0 bytes"),
    "maximum length too small for a PDV": (ac(application_context(), context(), user_information(maximum(6))),
                                           "cannot hold a presentation data value"),
    "duplicate application context": (ac(application_context(), application_context(), context(), user_information()),
                                      "second application context"),
    "duplicate user information": (ac(application_context(), context(), user_information(), user_information()),
                                   "second user information"),
    "duplicate presentation context ID": (ac(application_context(), context(1), context(1), user_information()),
                                          "two presentation context items with ID 1"),
    "duplicate maximum length": (ac(application_context(), context(), user_information(maximum(1), maximum(1))),
                                 "maximum length|second"),
    "role selection sub-items that disagree":
        (ac(application_context(), context(), user_information(maximum(0), role(CT, 1, 0), role(CT, 0, 1))),
         "disagree"),
    "role of 2": (ac(application_context(), context(), user_information(maximum(0), role(CT, 1, 2))), "roles of 0 or 1"),
    "role UID length overruns": (ac(application_context(), context(),
                                    user_information(item(0x54, b"\x00\x40" + CT.encode() + b"\x01\x01"))),
                                 "UID length runs past"),
    "asynchronous operations window of 2 bytes":
        (ac(application_context(), context(), user_information(item(0x53, b"\x00\x01"))), "window sub-item of 2"),
    "user identity response length lies":
        (ac(application_context(), context(), user_information(item(0x59, b"\x00\x09abc"))), "server response"),
    "duplicate user identity response":
        (ac(application_context(), context(), user_information(item(0x59, b"\x00\x00"), item(0x59, b"\x00\x00"))),
         "second user identity"),
    "application context name not a UID": (ac(item(0x10, b"DICOM"), context(), user_information()), "not a UID"),
    "not an A-ASSOCIATE-AC": (b"\x01" + GOOD[1:], "PDU type 0x01"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_answer_is_refused_saying_why(case):
    pdu, why = MALFORMED[case]
    with pytest.raises(ProtocolViolation, match=why):
        read_acceptance(pdu, proposal())


def test_an_answer_for_a_context_never_proposed_is_refused():
    with pytest.raises(ProtocolViolation, match="answers presentation context 5, which was not proposed"):
        read_acceptance(ac(application_context(), context(1), context(5), user_information()), proposal())


def test_a_maximum_length_of_0_means_no_limit_as_ps3_8_d_1_says():
    negotiated = read_acceptance(ac(application_context(), context(), user_information(maximum(0))), proposal())
    assert negotiated.peer_max_pdu == 0 and list(negotiated.contexts) == [1]


def test_a_refused_context_with_an_empty_transfer_syntax_is_not_tested():
    negotiated = read_acceptance(ac(application_context(), context(), context(3, 4, b""), user_information()),
                                 proposal())
    assert [(cx.context_id, cx.result) for cx in negotiated.refused] == [(3, 4)]


def test_unknown_items_and_sub_items_are_skipped():
    unknown = item(0x7F, b"\xde\xad")
    noisy = ac(unknown, application_context(), item(0x20, b"\x01\x00\x00\x00"),
               item(0x21, b"\x01\x00\x00\x00" + item(0x41, b"x") + item(0x40, IMPLICIT)), context(3, 3), unknown,
               item(0x50, item(0x5F, b"\x01") + maximum(16384) + item(0x58, b"\x01\x00\x00\x00\x00\x00")
                    + item(0x57, b"") + item(0x52, b"1.2.3.4")), item(0xFF, b""))
    assert read_acceptance(noisy, proposal()) == read_acceptance(GOOD, proposal())


def test_a_role_selection_repeated_as_it_was_reads_once():
    repeated = ac(application_context(), context(), context(3), user_information(maximum(0), role(CT, 1, 1),
                                                                                 role(CT, 1, 1)))
    assert read_acceptance(repeated, proposal()).contexts[3].as_scp


@pytest.mark.parametrize("pdu", [b"", b"\x03\x00\x00\x00\x00\x04\x00\x01", b"\x03\x00\x00\x00\x00\x05\x00\x01\x01\x01",
                                 b"\x02\x00\x00\x00\x00\x04\x00\x01\x01\x01"])
def test_a_malformed_rejection_is_refused(pdu):
    with pytest.raises(ProtocolViolation):
        Rejection.decode(pdu)


@pytest.mark.parametrize("seed", range(40))
def test_random_damage_gives_an_answer_or_a_protocol_violation_and_nothing_else(seed):
    chance = random.Random(seed)
    base = ac(application_context(), context(1), context(3, 0, b"1.2.840.10008.1.2.1"),
              user_information(maximum(16384), item(0x52, b"1.2.3.4"), item(0x55, b"X"), role(CT, 1, 1),
                               item(0x53, b"\x00\x01\x00\x01"), item(0x59, b"\x00\x02ok")))
    for _ in range(250):
        damaged = bytearray(base)
        for _ in range(chance.randint(1, 4)):
            damaged[chance.randrange(len(damaged))] = chance.randrange(256)
        if chance.random() < 0.3:
            damaged = damaged[:chance.randrange(74, len(damaged))]
            struct.pack_into(">I", damaged, 2, len(damaged) - 6)
        try:
            read_acceptance(bytes(damaged), proposal())
        except ProtocolViolation:
            pass
