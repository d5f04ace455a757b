"""Hostile data against ``pacskit serve`` (issue 18): a deflate bomb in a C-FIND identifier
from a peer not allowed to find, and from one that is; the same bomb as a C-STORE; values
longer than their stream, sequences nested a thousand deep, Affected SOP Instance UIDs no
response can carry; a known AE title calling from another address. Each is sent as is on
loopback; the server's peak memory (VmHWM, reset before) stays bounded, it answers with
the status docs/hostile-data.md gives, leaves nothing in tmp/ or the index, and serves on."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import httpx
import pytest
from hostile import (
    DEFLATED,
    EXPLICIT_LE,
    PIXEL_DATA,
    PRIVATE_OB,
    SECONDARY_CAPTURE,
    MiB,
    deflate_bomb,
    explicit,
    image_header,
    long_element_header,
    nested_sequences,
    send_fragmented,
)
from pdu_link import PduLink
from peak_memory import peak_kib, reset_peak
from pydicom import Dataset
from raw_pdu import (
    A_ASSOCIATE_AC_PDU,
    A_ASSOCIATE_RJ_PDU,
    C_FIND_RSP,
    C_STORE_RSP,
    STUDY_ROOT_FIND,
    VERIFICATION,
    Proposed,
    associate_rq,
    read_associate_ac,
)
from raw_requestor import RawRequestor
from serve_process import ARCHIVE_AET, CLIENT_AET, ServeProcess

from pacskit import Client, Settings
from pacskit.archive import Archive
from pacskit.net.commands import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    C_STORE_RQ,
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    DATA_SET_PRESENT,
    ERROR_COMMENT,
    MESSAGE_ID,
    PRIORITY,
    c_find_rq,
    c_store_rq,
    command_set,
    uid,
    us,
)
from pacskit.query import Query
from pacskit.settings import ArchiveSettings, NodeConfig, WebSettings
from pacskit.testing.peers import free_port

BOMB = 400 * MiB
# The bomb held once inflated would be +400 MiB (+800 MB measured before the fix); 50 MB is
# the room a refused request may take: its 398 KiB, the inflater's 1 MiB pieces, threads.
PEAK_GROWTH_KIB = 50 * 1000
# Refused before it is decoded, the identifier costs its own 398 KiB and the association's
# buffers (+1 MB measured); inflated to the 16 MiB cap and decoded, it would cost +20 MB.
UNDECODED_GROWTH_KIB = 8 * 1000
NOT_AUTHORIZED, OUT_OF_RESOURCES, DOES_NOT_MATCH, CANNOT_UNDERSTAND = 0x0124, 0xA700, 0xA900, 0xC000
STRANGER = "STRANGER"
CONTEXTS = (Proposed(1, VERIFICATION), Proposed(3, SECONDARY_CAPTURE, (EXPLICIT_LE,)),
            Proposed(5, SECONDARY_CAPTURE, (DEFLATED,)), Proposed(7, STUDY_ROOT_FIND, (DEFLATED,)))
PLAIN_STORE, DEFLATED_STORE, DEFLATED_FIND = 3, 5, 7


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServeProcess(tmp_path_factory.mktemp("hostile") / "data", http=True) as served:
        yield served


def associate(server: ServeProcess, calling: str) -> RawRequestor:
    return RawRequestor("127.0.0.1", server.port, ARCHIVE_AET, CONTEXTS, calling=calling)


def stored_files(server: ServeProcess) -> list[Path]:
    return sorted(p for p in (server.data_dir / "files").rglob("*") if p.is_file())


def indexed(server: ServeProcess, study: str) -> int:
    """How many instances of ``study`` the index answers a C-FIND with."""
    client = Client(Settings(ae_title=CLIENT_AET))
    return len(list(client.find(server.node, Query(level="IMAGE", match={"StudyInstanceUID": study}))))


def assert_serves(server: ServeProcess) -> None:
    """A new association answers C-ECHO and stores an instance."""
    ds = image_header()
    with associate(server, STRANGER) as scu:
        assert scu.echo(1) == 0x0000
        scu.send_message(PLAIN_STORE, c_store_rq(2, SECONDARY_CAPTURE, ds.SOPInstanceUID), explicit(ds))
        assert scu.read_message(10).status == 0x0000
        scu.release()


def bomb_identifier() -> bytes:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    identifier = deflate_bomb(explicit(query), PRIVATE_OB, BOMB)
    assert 390_000 < len(identifier) < 420_000, len(identifier)
    return identifier


@pytest.mark.parametrize(("calling", "status", "comment", "bound"), [
    (STRANGER, NOT_AUTHORIZED, "is not a known peer", UNDECODED_GROWTH_KIB),
    (CLIENT_AET, CANNOT_UNDERSTAND, "inflates beyond 16 MiB", PEAK_GROWTH_KIB),
], ids=["not allowed to find", "allowed to find"])
def test_a_deflated_identifier_bomb_is_refused_within_bounded_memory(server, calling, status, comment, bound):
    identifier = bomb_identifier()
    before = reset_peak(server.pid)
    with associate(server, calling) as scu:
        send_fragmented(scu, DEFLATED_FIND, c_find_rq(1, STUDY_ROOT_FIND), identifier, scu.negotiated.max_pdu)
        response = scu.read_message(60)
        assert (response.command_field, response.status) == (C_FIND_RSP, status)
        assert comment in response.text(ERROR_COMMENT), response.text(ERROR_COMMENT)
        scu.release()
    growth = peak_kib(server.pid) - before
    assert growth < bound, f"+{growth} KiB"
    assert_serves(server)


def test_a_deflate_bomb_stored_by_an_unknown_peer_is_refused_and_nothing_is_kept(server):
    ds = image_header()
    bomb = deflate_bomb(explicit(ds), PIXEL_DATA, BOMB)
    assert 390_000 < len(bomb) < 420_000, len(bomb)
    files = stored_files(server)
    before = reset_peak(server.pid)
    with associate(server, STRANGER) as scu:
        send_fragmented(scu, DEFLATED_STORE, c_store_rq(1, SECONDARY_CAPTURE, ds.SOPInstanceUID), bomb,
                        scu.negotiated.max_pdu)
        response = scu.read_message(60)
        assert (response.command_field, response.status) == (C_STORE_RSP, OUT_OF_RESOURCES)
        assert "inflates beyond 64 MiB" in response.text(ERROR_COMMENT)
        scu.release()
    growth = peak_kib(server.pid) - before
    assert growth < PEAK_GROWTH_KIB, f"+{growth} KiB"
    assert server.temporary_files() == []
    assert stored_files(server) == files
    assert indexed(server, ds.StudyInstanceUID) == 0
    assert_serves(server)


def test_a_deflated_instance_within_the_limit_is_stored(server):
    ds = image_header()
    instance = deflate_bomb(explicit(ds), PIXEL_DATA, 8 * MiB)
    with associate(server, STRANGER) as scu:
        send_fragmented(scu, DEFLATED_STORE, c_store_rq(1, SECONDARY_CAPTURE, ds.SOPInstanceUID), instance,
                        scu.negotiated.max_pdu)
        assert scu.read_message(30).status == 0x0000
        scu.release()
    assert indexed(server, ds.StudyInstanceUID) == 1


def pixel_data_past_the_end() -> tuple[Dataset, bytes]:
    ds = image_header()
    return ds, explicit(ds) + long_element_header(PIXEL_DATA, b"OW", MiB) + bytes(100)


def thousand_nested_sequences() -> tuple[Dataset, bytes]:
    ds = nested_sequences(1000)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    try:
        return ds, explicit(ds)
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("make", [pixel_data_past_the_end, thousand_nested_sequences],
                         ids=["pixel data longer than the stream", "1000 nested sequences"])
def test_a_malformed_dataset_is_refused_and_nothing_is_kept(server, make):
    ds, data = make()
    files = stored_files(server)
    with associate(server, STRANGER) as scu:
        send_fragmented(scu, PLAIN_STORE, c_store_rq(1, SECONDARY_CAPTURE, ds.SOPInstanceUID), data,
                        scu.negotiated.max_pdu)
        response = scu.read_message(30)
        assert (response.status, response.text(ERROR_COMMENT)) == (CANNOT_UNDERSTAND, "the dataset is malformed")
        assert scu.echo(2) == 0x0000
        scu.release()
    assert server.temporary_files() == []
    assert stored_files(server) == files
    assert indexed(server, ds.StudyInstanceUID) == 0


@pytest.mark.parametrize("raw_uid", [b"1.2.\xc3\xa9.3\0", ("1." + "2" * 70).encode()],
                         ids=["not ASCII", "over 64 characters"])
def test_an_affected_sop_instance_uid_no_response_can_carry_is_refused(server, raw_uid):
    ds = image_header()
    command = command_set((AFFECTED_SOP_CLASS_UID, uid(SECONDARY_CAPTURE)), (COMMAND_FIELD, us(C_STORE_RQ)),
                          (MESSAGE_ID, us(1)), (PRIORITY, us(0)), (COMMAND_DATA_SET_TYPE, us(DATA_SET_PRESENT)),
                          (AFFECTED_SOP_INSTANCE_UID, raw_uid))
    files = stored_files(server)
    with associate(server, STRANGER) as scu:
        scu.send_message(PLAIN_STORE, command, explicit(ds))
        response = scu.read_message(10)
        assert (response.command_field, response.status) == (C_STORE_RSP, DOES_NOT_MATCH)
        assert AFFECTED_SOP_INSTANCE_UID not in response.command
        assert scu.echo(2) == 0x0000, "the association must go on"
        scu.release()
    assert server.temporary_files() == []
    assert stored_files(server) == files


def call_from(address: str, port: int, calling: str) -> tuple[int, bytes]:
    """An A-ASSOCIATE-RQ from ``address``: the PDU type and body of the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(address, 0))
    link = PduLink(sock)
    try:
        link.send(associate_rq(ARCHIVE_AET, calling, [Proposed(1, VERIFICATION)]))
        answer = link.read_pdu(5)
        assert answer is not None, "closed without an answer"
        return answer
    finally:
        link.close()


def test_a_known_ae_title_calling_from_another_address_is_rejected_at_association(tmp_path):
    settings = Settings(ae_title=ARCHIVE_AET, port=free_port(), bind_address="127.0.0.1",
                        archive=ArchiveSettings(data_dir=tmp_path / "archive", fsync=False, check_peer_host=True),
                        web=WebSettings(enabled=False),
                        nodes={"far": NodeConfig(ae_title="FAR", host="127.0.0.2", port=104)})
    with Archive(settings) as archive:
        archive.start()
        pdu_type, body = call_from("127.0.0.1", settings.port, "FAR")
        assert pdu_type == A_ASSOCIATE_RJ_PDU
        assert tuple(body[1:4]) == (0x01, 0x01, 0x03), "permanent, service user, calling AE title not recognised"
        pdu_type, body = call_from("127.0.0.2", settings.port, "FAR")
        assert pdu_type == A_ASSOCIATE_AC_PDU
        assert read_associate_ac(body, [Proposed(1, VERIFICATION)]).contexts
        pdu_type, _ = call_from("127.0.0.1", settings.port, STRANGER)
        assert pdu_type == A_ASSOCIATE_AC_PDU, "an unknown AE title is still let in to echo and store"


def stored_deflated(server: ServeProcess, inflated: int) -> tuple[Dataset, str]:
    """An instance stored deflated, holding a private OB of zeros ``inflated`` bytes long
    once inflated; its header and its WADO-RS URL."""
    ds = image_header()
    instance = deflate_bomb(explicit(ds), PRIVATE_OB, inflated)
    with associate(server, STRANGER) as scu:
        send_fragmented(scu, DEFLATED_STORE, c_store_rq(1, SECONDARY_CAPTURE, ds.SOPInstanceUID), instance,
                        scu.negotiated.max_pdu)
        assert scu.read_message(30).status == 0x0000
        scu.release()
    return ds, (f"{server.web_url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                f"/instances/{ds.SOPInstanceUID}")


def test_the_metadata_of_a_stored_deflated_instance_is_read_in_bounded_memory(server):
    """A stored deflated instance whose 60 MiB private value inflates from 60 KiB: its
    /metadata and /bulk are answered without pydicom inflating it in memory (+290 MB
    measured before), from a temporary file that is gone afterwards."""
    ds, url = stored_deflated(server, 60 * MiB)
    before = reset_peak(server.pid)
    answer = httpx.get(f"{url}/metadata", timeout=60)
    growth = peak_kib(server.pid) - before
    assert answer.status_code == 200, answer.text
    document = answer.json()[0]
    assert document["00111010"] == {"vr": "OB", "BulkDataURI": f"{url}/bulk/00111010"}
    assert document["00080018"]["Value"] == [ds.SOPInstanceUID]
    assert growth < 16 * 1000, f"+{growth} KiB"
    assert server.temporary_files() == []
    bulk = httpx.get(document["00111010"]["BulkDataURI"], timeout=60)
    assert bulk.status_code == 200
    assert len(bulk.content) > 60 * MiB - len(explicit(ds)) - 12
    assert server.temporary_files() == []


def test_a_stored_deflated_instance_is_sent_in_explicit_vr_little_endian_in_bounded_memory(server):
    """The same instance retrieved by WADO-RS in the default syntax: inflated into tmp/
    and streamed from there (pydicom's read and rewrite held it twice in memory)."""
    ds, url = stored_deflated(server, 60 * MiB)
    before = reset_peak(server.pid)
    size = 0
    with httpx.stream("GET", url, headers={"Accept": "application/dicom"}, timeout=60) as answer:
        assert answer.status_code == 200
        head = b""
        for chunk in answer.iter_bytes():
            head = head or chunk[:4096]
            size += len(chunk)
    growth = peak_kib(server.pid) - before
    assert growth < 16 * 1000, f"+{growth} KiB"
    assert head[128:132] == b"DICM" and b"1.2.840.10008.1.2.1\0" in head and b"1.2.840.10008.1.2.1.99" not in head
    assert size > 60 * MiB
    assert server.temporary_files() == []
