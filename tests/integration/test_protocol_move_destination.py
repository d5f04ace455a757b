"""The storage SCP pacskit runs for a C-MOVE to itself, as association acceptor: a scripted
C-MOVE SCP reaches it with a raw requestor, sends it an unknown PDU, then stores an
instance properly on a second association (PS3.8 9.2 Table 9-10; PS3.4 C.4.2)."""

from __future__ import annotations

from pathlib import Path

from clirunner import run_cli
from pydicom import Dataset, dcmread
from pydicom.uid import generate_uid
from raw_acceptor import RawAcceptor
from raw_pdu import (
    C_STORE_RSP,
    CT_IMAGE,
    SERVICE_PROVIDER,
    UNRECOGNIZED_PDU,
    Abort,
    Proposed,
    dataset_bytes,
    pdu,
)
from raw_requestor import RawRequestor

from pacskit.net.commands import C_MOVE_RSP, MOVE_DESTINATION, c_store_rq, retrieve_rsp
from pacskit.testing.peers import free_port

OUR_AET = "PACSKIT"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY = "1.2.826.0.1.3680043.10.1317.8"


def test_the_move_destination_aborts_an_unknown_pdu_and_still_receives(tmp_path: Path):
    port = free_port()
    notes: dict[str, object] = {}
    instance = Dataset()
    instance.SOPClassUID = CT_IMAGE
    instance.SOPInstanceUID = generate_uid()
    instance.StudyInstanceUID = STUDY
    instance.SeriesInstanceUID = generate_uid()
    instance.PatientID = "PROTO03"
    instance.Modality = "CT"

    def script(conversation):
        request = conversation.link.read_message(5)
        destination = request.text(MOVE_DESTINATION)
        storage = (Proposed(1, CT_IMAGE),)
        with RawRequestor("127.0.0.1", port, destination, storage, calling="MOVER") as garbled:
            garbled.send(pdu(0x0A, b"\0\0\0\0"))
            try:
                notes["abort"] = garbled.read_abort(1.5)
            except AssertionError as other:
                notes["abort"] = str(other)
        with RawRequestor("127.0.0.1", port, destination, storage, calling="MOVER") as proper:
            proper.send_message(1, c_store_rq(1, CT_IMAGE, instance.SOPInstanceUID), dataset_bytes(instance))
            response = proper.read_message(5)
            notes["store"] = (response.command_field, response.status)
            proper.release()
        conversation.link.send_message(request.context_id, retrieve_rsp(
            C_MOVE_RSP, request.message_id or 0, STUDY_MOVE, 0x0000, (None, 1, 0, 0)))
        conversation.answer_release(5)

    with RawAcceptor("MOVER", script) as peer:
        result = run_cli("--aet", OUR_AET, "--port", port, "get", peer.address, "--study-uid", STUDY,
                         "--method", "move", "-o", tmp_path)
        assert peer.finished.wait(15)
    assert notes.get("store") == (C_STORE_RSP, 0x0000), (notes, peer.errors, result.stderr)
    assert result.returncode == 0, result.stderr
    assert [dcmread(p).SOPInstanceUID for p in tmp_path.rglob("*.dcm")] == [instance.SOPInstanceUID]
    assert notes["abort"] == Abort(SERVICE_PROVIDER, UNRECOGNIZED_PDU), notes["abort"]
    assert not peer.errors, peer.errors
