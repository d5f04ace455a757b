"""What a user reads of the DICOM exchange at INFO (``-v``) and DEBUG (``-vv``): the
association's negotiation and end, one line per DIMSE message, the command set and the
identifier element by element — and never a person name, at any depth."""

from __future__ import annotations

import logging
import struct
import zlib

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.dsutils import encode

from pacskit.dataset_dump import DUMP_LIMIT, dump_dataset
from pacskit.encoded import parse_file_meta
from pacskit.net import exchange_log
from pacskit.net.commands import (
    C_GET_RSP,
    c_cancel_rq,
    c_echo_rsp,
    c_find_rq,
    c_find_rsp,
    c_move_rq,
    c_store_rq,
    c_store_rsp,
    command_set,
    retrieve_rsp,
    uid,
    us,
)
from pacskit.net.wire import parse_command
from pacskit.testing.hidden_names import NAME_MARKER, craft_hidden_names

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
NAMES = ("Doe^John", "Nestor^Ana", "Hippocrates^Kos", "Opmax^Lu")


def lines(caplog: pytest.LogCaptureFixture, logger: str, level: int | None = None) -> list[str]:
    """Every line logged on ``logger`` (a record may hold several), at ``level`` if given."""
    return [line for record in caplog.records
            if record.name == logger and (level is None or record.levelno == level)
            for line in record.getMessage().splitlines()]


@pytest.fixture
def debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="pacskit")
    return caplog


@pytest.fixture
def info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="pacskit")
    return caplog


def identifier_with_names(implicit: bool) -> bytes:
    """A C-FIND identifier with a name at the top level, one in a sequence, a referring
    physician's, and OperatorsName (a PN) sent as UN in Explicit VR — written by hand:
    pydicom would write it as PN."""
    head = Dataset()
    head.StudyDate = ""
    head.QueryRetrieveLevel = "STUDY"
    head.ModalitiesInStudy = ["CT", "MR"]
    head.ReferringPhysicianName = NAMES[2]
    operator = NAMES[3].encode()
    if implicit:
        unknown = struct.pack("<HHI", 0x0008, 0x1070, len(operator)) + operator
    else:
        unknown = struct.pack("<HH2sHI", 0x0008, 0x1070, b"UN", 0, len(operator)) + operator
    tail = Dataset()
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    item.PatientName = NAMES[1]
    tail.ReferencedStudySequence = Sequence([item])
    tail.PatientName = NAMES[0]
    tail.PatientID = "12345"
    return encode(head, implicit, True) + unknown + encode(tail, implicit, True)


def test_a_request_and_its_contexts(debug):
    exchange_log.association_requested(
        calling="PACSKIT", called="ORTHANC", address="127.0.0.1", port=4242,
        contexts=[(1, STUDY_FIND, [ImplicitVRLittleEndian, ExplicitVRLittleEndian]),
                  (3, STUDY_GET, [ExplicitVRLittleEndian]),
                  (5, CT_IMAGE, [ExplicitVRLittleEndian])],
        roles={CT_IMAGE: (False, True)}, max_pdu=16384,
        implementation=("1.2.826.0.1.3680043.9.3811.3.0.4", "PACSKIT_1"))
    assert lines(debug, "pacskit.association", logging.INFO) == [
        "Requesting association: PACSKIT -> ORTHANC at 127.0.0.1:4242 (3 presentation contexts)"]
    assert lines(debug, "pacskit.association", logging.DEBUG) == [
        "A-ASSOCIATE-RQ to ORTHANC:",
        "  context 1: Study Root Query/Retrieve Information Model - FIND "
        "[Implicit VR Little Endian, Explicit VR Little Endian] (SCU role)",
        "  context 3: Study Root Query/Retrieve Information Model - GET [Explicit VR Little Endian] (SCU role)",
        "  context 5: CT Image Storage [Explicit VR Little Endian] (SCP role proposed)",
        "  max PDU length: 16384",
        "  implementation: 1.2.826.0.1.3680043.9.3811.3.0.4 PACSKIT_1",
    ]


def test_a_request_received_by_the_archive(info):
    exchange_log.association_received(
        calling="STORESCU", called="ARCHIVE", address="127.0.0.1", port=51234,
        contexts=[(1, CT_IMAGE, [ExplicitVRLittleEndian])], roles={}, max_pdu=0,
        implementation=("1.2.276.0.7230010.3.0.3.6.8", "OFFIS_DCMTK_368"))
    assert lines(info, "pacskit.association") == [
        "Association request: STORESCU -> ARCHIVE from 127.0.0.1:51234 (1 presentation context)"]


def test_acceptance_with_each_context_accepted_or_refused(debug):
    exchange_log.association_accepted(
        peer="ORTHANC", proposed=3, max_pdu=16384,
        accepted=[(1, STUDY_FIND, ExplicitVRLittleEndian, True, False),
                  (5, CT_IMAGE, ImplicitVRLittleEndian, False, True)],
        refused=[(3, STUDY_GET, 3)],
        implementation=("1.2.826.0.1.3680043.2.1143.107.104.103.115.2.8.4", "ORTHANC_1_12"))
    assert lines(debug, "pacskit.association", logging.INFO) == [
        "Association accepted by ORTHANC: 2 of 3 presentation contexts (max PDU 16384)"]
    assert lines(debug, "pacskit.association", logging.DEBUG) == [
        "A-ASSOCIATE-AC from ORTHANC:",
        "  context 1: Study Root Query/Retrieve Information Model - FIND: Explicit VR Little Endian (SCU role)",
        "  context 3: Study Root Query/Retrieve Information Model - GET: refused "
        "(abstract syntax not supported (provider rejection))",
        "  context 5: CT Image Storage: Implicit VR Little Endian (SCP role)",
        "  max PDU length: 16384",
        "  implementation: 1.2.826.0.1.3680043.2.1143.107.104.103.115.2.8.4 ORTHANC_1_12",
    ]


def test_acceptance_by_the_archive(info):
    exchange_log.association_accepted(peer="STORESCU (127.0.0.1:51234)", proposed=1, max_pdu=0,
                                      accepted=[(1, CT_IMAGE, ExplicitVRLittleEndian, True, False)],
                                      implementation=("1.2.3", "X"), by_us=True)
    assert lines(info, "pacskit.association") == [
        "Accepted association from STORESCU (127.0.0.1:51234): 1 of 1 presentation context (no PDU limit)"]


@pytest.mark.parametrize(("result", "source", "reason", "by_us", "expected"), [
    (1, 1, 7, False, "Association rejected by ORTHANC (permanent): called AE title not recognised"),
    (2, 3, 1, False, "Association rejected by ORTHANC (transient): temporary congestion"),
    (1, 1, 3, True, "Rejected association from ORTHANC (permanent): calling AE title not recognised"),
    (1, 2, 2, False, "Association rejected by ORTHANC (permanent): protocol version not supported"),
])
def test_rejection_in_words(info, result, source, reason, by_us, expected):
    exchange_log.association_rejected(peer="ORTHANC", result=result, source=source, reason=reason, by_us=by_us)
    assert lines(info, "pacskit.association") == [expected]


def test_release_and_abort(info):
    exchange_log.released(peer="ORTHANC", by_peer=False, seconds=1.25)
    exchange_log.released(peer="STORESCU", by_peer=True)
    exchange_log.aborted(peer="ORTHANC", source=2, reason=2, by_us=False)
    exchange_log.aborted(peer="ORTHANC", source=0, reason=0, by_us=True, why="no response within 30 s",
                         seconds=30.0)
    records = [(r.levelno, r.getMessage()) for r in info.records if r.name == "pacskit.association"]
    assert records == [
        (logging.INFO, "Released association with ORTHANC after 1.250 s"),
        (logging.INFO, "Association released by STORESCU"),
        (logging.WARNING, "Association aborted by ORTHANC (DICOM UL service-provider: unexpected PDU)"),
        (logging.INFO, "Aborted association with ORTHANC: no response within 30 s "
                       "(DICOM UL service-user) after 30.000 s"),
    ]


def test_one_info_line_per_message(info):
    find = identifier_with_names(implicit=True)
    exchanged = [
        ("sent", c_find_rq(3, STUDY_FIND), find),
        ("received", c_find_rsp(3, STUDY_FIND, 0xFF00, has_identifier=True), find),
        ("received", c_find_rsp(3, STUDY_FIND, 0xFF00, has_identifier=True), find),
        ("received", c_find_rsp(3, STUDY_FIND, 0x0000, has_identifier=False), None),
        ("sent", c_cancel_rq(3), None),
        ("sent", c_move_rq(4, STUDY_MOVE, "STORESCP"), find),
        ("received", retrieve_rsp(C_GET_RSP, 5, STUDY_GET, 0xFF00, (3, 1, 0, 0)), None),
        ("received", retrieve_rsp(C_GET_RSP, 5, STUDY_GET, 0xB000, (None, 3, 1, 0)), None),
        ("received", c_store_rq(9, CT_IMAGE, "1.2.3.9"), b"\0" * 10),
        ("sent", c_store_rsp(9, CT_IMAGE, "1.2.3.9", 0x0000), None),
        ("received", c_store_rsp(7, CT_IMAGE, "1.2.3.7", 0xA700, "Disk full"), None),
        ("received", c_echo_rsp(1, VERIFICATION, 0x0122), None),
    ]
    for direction, command, data in exchanged:
        exchange_log.message(direction, peer="ORTHANC", context_id=1, command=parse_command(command),
                             dataset=data, transfer_syntax=ImplicitVRLittleEndian)
    assert lines(info, "pacskit.dimse") == [
        "Sending C-FIND-RQ (ID 3, context 1, Study Root Q/R - FIND)",
        "Received C-FIND-RSP (ID 3): Pending 0xFF00",
        "Received C-FIND-RSP (ID 3): Pending 0xFF00",
        "Received C-FIND-RSP (ID 3): Success",
        "Sending C-CANCEL-RQ (of ID 3, context 1)",
        "Sending C-MOVE-RQ (ID 4, context 1, Study Root Q/R - MOVE, to STORESCP)",
        "Received C-GET-RSP (ID 5): Pending 0xFF00, sub-operations 3 remaining, 1 completed, 0 failed, 0 warning",
        "Received C-GET-RSP (ID 5): Warning 0xB000 (Sub-operations complete, one or more failures or "
        "warnings), sub-operations 3 completed, 1 failed, 0 warning",
        "Received C-STORE-RQ (ID 9, context 1, CT Image Storage, instance 1.2.3.9)",
        "Sending C-STORE-RSP (ID 9): Success",
        "Received C-STORE-RSP (ID 7): Failure 0xA700 (Refused: Out of Resources): Disk full",
        "Received C-ECHO-RSP (ID 1): Failure 0x0122 (Refused: SOP Class Not Supported)",
    ]
    assert not lines(info, "pacskit.dimse", logging.DEBUG)


def test_n_commands_by_name(info):
    n_action = command_set((0x0003, uid("1.2.840.10008.1.20.1")), (0x0100, us(0x0130)), (0x0110, us(2)),
                           (0x0800, us(0x0101)), (0x1001, uid("1.2.840.10008.1.20.1.1")), (0x1008, us(1)))
    n_event = command_set((0x0100, us(0x8100)), (0x0120, us(8)), (0x0800, us(0x0101)), (0x0900, us(0)))
    for command in (n_action, n_event):
        exchange_log.message("sent", peer="PEER", context_id=7, command=parse_command(command),
                             dataset=None, transfer_syntax=None)
    assert lines(info, "pacskit.dimse") == [
        "Sending N-ACTION-RQ (ID 2, context 7, Storage Commitment Push Model SOP Class, "
        "instance 1.2.840.10008.1.20.1.1, action type 1)",
        "Sending N-EVENT-REPORT-RSP (ID 8): Success",
    ]


def test_the_server_names_the_peer_of_each_message(info):
    exchange_log.message("received", peer="MODALITY (127.0.0.1:40000)", context_id=1,
                         command=parse_command(c_store_rq(1, CT_IMAGE, "1.2.3")), dataset=b"\0" * 4,
                         transfer_syntax=ExplicitVRLittleEndian, name_peer=True)
    exchange_log.message("sent", peer="MODALITY (127.0.0.1:40000)", context_id=1,
                         command=parse_command(c_store_rsp(1, CT_IMAGE, "1.2.3", 0)), dataset=None,
                         transfer_syntax=None, name_peer=True)
    assert lines(info, "pacskit.dimse") == [
        "Received C-STORE-RQ from MODALITY (127.0.0.1:40000) (ID 1, context 1, CT Image Storage, instance 1.2.3)",
        "Sending C-STORE-RSP to MODALITY (127.0.0.1:40000) (ID 1): Success",
    ]


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_debug_dumps_the_command_and_the_identifier_without_names(debug, syntax):
    identifier = identifier_with_names(implicit=syntax == ImplicitVRLittleEndian)
    exchange_log.message("sent", peer="ORTHANC", context_id=1, command=parse_command(c_find_rq(3, STUDY_FIND)),
                         dataset=identifier, transfer_syntax=syntax)
    dumped = lines(debug, "pacskit.dimse", logging.DEBUG)
    assert dumped == [
        "command set:",
        "  (0000,0000) UL [76]  # CommandGroupLength",
        f"  (0000,0002) UI [{STUDY_FIND}]  # AffectedSOPClassUID",
        "  (0000,0100) US [0x0020] C-FIND-RQ  # CommandField",
        "  (0000,0110) US [3]  # MessageID",
        "  (0000,0700) US [0]  # Priority",
        "  (0000,0800) US [0]  # CommandDataSetType",
        f"dataset: {len(identifier)} bytes, {'Implicit' if syntax == ImplicitVRLittleEndian else 'Explicit'} "
        "VR Little Endian",
        "  (0008,0020) DA (no value)  # StudyDate",
        "  (0008,0052) CS [STUDY]  # QueryRetrieveLevel",
        "  (0008,0061) CS [CT\\MR]  # ModalitiesInStudy",
        "  (0008,0090) PN (withheld)  # ReferringPhysicianName",
        "  (0008,1070) " + ("PN" if syntax == ImplicitVRLittleEndian else "UN") + " (withheld)  # OperatorsName",
        "  (0008,1110) SQ (1 item)  # ReferencedStudySequence",
        "    item 1",
        "      (0008,1155) UI [1.2.3.4]  # ReferencedSOPInstanceUID",
        "      (0010,0010) PN (withheld)  # PatientName",
        "  (0010,0010) PN (withheld)  # PatientName",
        "  (0010,0020) LO [12345]  # PatientID",
    ]
    assert not any(name.split("^")[0] in debug.text for name in NAMES)


def test_a_failure_status_in_the_command_set(debug):
    exchange_log.message("received", peer="ORTHANC", context_id=1, dataset=None, transfer_syntax=None,
                         command=parse_command(c_store_rsp(7, CT_IMAGE, "1.2.3.7", 0xA700, "Disk full")))
    assert "  (0000,0900) US [0xA700] Failure (Refused: Out of Resources)  # Status" in \
        lines(debug, "pacskit.dimse", logging.DEBUG)


def test_names_hidden_where_a_reader_may_not_look_are_withheld(tmp_path):
    """Every crafted variant of :mod:`pacskit.testing.hidden_names` — names in UN
    sequences of defined and undefined length, under wrong VRs, after the pixel data, in
    big endian — is dumped without a name; an unreadable UN is shown by its length."""
    for hidden in craft_hidden_names(tmp_path):
        data = hidden.path.read_bytes()
        meta, offset = parse_file_meta(data)
        dumped = "\n".join(dump_dataset(data[offset:], meta[0x0010], limit=1 << 20))
        assert NAME_MARKER.decode() not in dumped, hidden.variant
        readable = hidden.names[:1] if hidden.variant == "unreadable" else hidden.names
        assert dumped.count("(withheld)") == len(readable), (hidden.variant, dumped)
        assert "  (0010,0020) LO [HIDDEN01]  # PatientID" in dumped


def test_an_instance_being_stored_is_not_dumped(debug):
    big = bytes(DUMP_LIMIT + 1)
    exchange_log.message("sent", peer="ORTHANC", context_id=1, dataset=big, transfer_syntax=ExplicitVRLittleEndian,
                         command=parse_command(c_store_rq(1, CT_IMAGE, "1.2.3")))
    assert lines(debug, "pacskit.dimse", logging.DEBUG)[-1] == f"dataset: {DUMP_LIMIT + 1} bytes"


def test_a_dataset_that_cannot_be_decoded_is_one_line(debug):
    garbage = b"\x08\x00\x52\x00 not deflated"
    exchange_log.message("received", peer="ORTHANC", context_id=1, dataset=memoryview(garbage),
                         transfer_syntax="1.2.840.10008.1.2.1.99",
                         command=parse_command(c_find_rsp(3, STUDY_FIND, 0xFF00, has_identifier=True)))
    assert lines(debug, "pacskit.dimse", logging.DEBUG)[-1] == \
        f"dataset: {len(garbage)} bytes (cannot be decoded: ValueError)"
    exchange_log.message("received", peer="ORTHANC", context_id=1, dataset=garbage, transfer_syntax=None,
                         command=parse_command(c_find_rsp(3, STUDY_FIND, 0xFF00, has_identifier=True)))
    assert lines(debug, "pacskit.dimse", logging.DEBUG)[-1] == \
        f"dataset: {len(garbage)} bytes (transfer syntax not known)"


def test_a_deflated_identifier_is_dumped(debug):
    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientName = NAMES[0]
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    deflated = compressor.compress(encode(ds, False, True)) + compressor.flush()
    exchange_log.message("received", peer="ORTHANC", context_id=1, dataset=deflated,
                         transfer_syntax="1.2.840.10008.1.2.1.99",
                         command=parse_command(c_find_rsp(3, STUDY_FIND, 0xFF00, has_identifier=True)))
    assert lines(debug, "pacskit.dimse", logging.DEBUG)[-3:] == [
        f"dataset: {len(deflated)} bytes, Deflated Explicit VR Little Endian",
        "  (0008,0052) CS [PATIENT]  # QueryRetrieveLevel",
        "  (0010,0010) PN (withheld)  # PatientName",
    ]


def test_a_disabled_level_logs_and_decodes_nothing(caplog):
    """With pacskit's loggers at WARNING, a message with a dataset that cannot even be
    read (a released buffer: any access raises) logs nothing and raises nothing; at DEBUG
    the same call logs a warning instead of raising."""
    caplog.set_level(logging.WARNING, logger="pacskit")
    released = memoryview(b"\x08\x00\x52\x00")
    released.release()
    command = parse_command(c_find_rsp(3, STUDY_FIND, 0xFF00, has_identifier=True))
    exchange_log.message("received", peer="ORTHANC", context_id=1, command=command, dataset=released,
                         transfer_syntax=ImplicitVRLittleEndian)
    exchange_log.association_requested(calling="A", called="B", address="127.0.0.1", port=1, contexts=[],
                                       roles={}, max_pdu=0, implementation=("1.2", "X"))
    exchange_log.pdu("sent", peer="B", pdu_type=4, length=100)
    exchange_log.released(peer="B", by_peer=True)
    assert caplog.records == []

    caplog.set_level(logging.DEBUG, logger="pacskit")
    exchange_log.message("received", peer="ORTHANC", context_id=1, command=command, dataset=released,
                         transfer_syntax=ImplicitVRLittleEndian)
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.WARNING]
    assert caplog.records[1].getMessage() == "a DIMSE message could not be logged (ValueError)"


def test_pdus_at_debug_only(caplog):
    caplog.set_level(logging.INFO, logger="pacskit")
    exchange_log.pdu("sent", peer="ORTHANC", pdu_type=0x04, length=16390)
    assert caplog.records == []
    caplog.set_level(logging.DEBUG, logger="pacskit")
    exchange_log.pdu("sent", peer="ORTHANC", pdu_type=0x04, length=16390)
    exchange_log.pdu("received", peer="ORTHANC", pdu_type=0x07, length=10)
    exchange_log.pdu("received", peer="ORTHANC", pdu_type=0x0A, length=10)
    assert lines(caplog, "pacskit.pdu") == [
        "Sent P-DATA-TF PDU to ORTHANC (16390 bytes)",
        "Received A-ABORT PDU from ORTHANC (10 bytes)",
        "Received PDU type 0x0A PDU from ORTHANC (10 bytes)",
    ]


def test_operations_of_the_archive(info):
    from pacskit.net.status import Outcome

    peer = exchange_log.peer_label("STORESCU", "127.0.0.1", 51234)
    exchange_log.operation(peer=peer, service="C-FIND", outcome=Outcome.SUCCESS, detail="12 matches",
                           seconds=0.0342)
    exchange_log.operation(peer=peer, service="C-STORE", outcome="failure", detail="0xA700 (Refused: disk full)",
                           seconds=0.5)
    records = [(r.levelno, r.getMessage()) for r in info.records if r.name == "pacskit.archive"]
    assert records == [
        (logging.INFO, "C-FIND for STORESCU (127.0.0.1:51234): success (12 matches) in 0.034 s"),
        (logging.WARNING, "C-STORE for STORESCU (127.0.0.1:51234): failure (0xA700 (Refused: disk full)) in 0.500 s"),
    ]


def test_peer_text_cannot_break_a_line(info):
    exchange_log.message("received", peer="X", context_id=1, dataset=None, transfer_syntax=None,
                         command=parse_command(c_store_rsp(7, CT_IMAGE, "1.2.3", 0xC000, "bad\r\nI: forged")))
    assert lines(info, "pacskit.dimse") == ["Received C-STORE-RSP (ID 7): Failure 0xC000 (Cannot Understand): "
                                            "bad??I: forged"]
