"""AsyncClient on the native asyncio driver (pacskit.net.aio_association): no thread
per call, many associations at once on one loop, a timeout or a cancellation that stops
the exchange on the wire, and the upper layer's rules against a scripted SCP (PS3.8 9.2,
Table 9-10; PS3.7 9.3.2.3)."""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
import time

import pytest
from driver_checks import exchange_lines, seconds_to_time_out
from proxy import RecordingProxy
from raw_acceptor import RawAcceptor
from raw_pdu import (
    A_ABORT_PDU,
    A_RELEASE_RQ_PDU,
    INVALID_PDU_PARAMETER_VALUE,
    P_DATA_TF_PDU,
    SERVICE_PROVIDER,
    VERIFICATION,
    Abort,
    pdu,
)

from pacskit import AsyncClient, Client, Node, Settings
from pacskit.errors import AssociationAborted, TlsFailure
from pacskit.level_queries import InstanceQuery, StudyQuery
from pacskit.net.commands import c_echo_rsp
from pacskit.query import Query
from pacskit.settings import TlsSettings
from pacskit.testing.certificates import make_certificates
from pacskit.testing.peers import StoreSCP, dcmtk_tls

SUCCESS = 0x0000


def node_of(orthanc, port: int | None = None) -> Node:
    return Node(ae_title=orthanc.ae_title, host="127.0.0.1", port=port or orthanc.port)


def test_no_thread_runs_during_a_find(orthanc, corpus):
    before = set(threading.enumerate())

    async def main() -> list[set[threading.Thread]]:
        seen = []
        async with AsyncClient(Settings()).iter_find(node_of(orthanc), Query.build("image"), timeout=30) as matches:
            async for _ in matches:
                seen.append(set(threading.enumerate()))
        await AsyncClient(Settings()).echo(node_of(orthanc), timeout=30)
        seen.append(set(threading.enumerate()))
        return seen

    seen = asyncio.run(main())
    assert len(seen) == len(corpus) + 1
    assert all(threads == before for threads in seen), [t.name for t in set.union(*seen) - before]


def test_a_hundred_finds_at_once_on_one_loop_all_succeed(orthanc, corpus):
    patients = sorted({c.patient_id for c in corpus})

    async def main():
        client = AsyncClient(Settings())
        alone = {p: await client.find_studies(node_of(orthanc), StudyQuery(patient_id=p)) for p in patients}
        found = await asyncio.gather(*(client.find_studies(node_of(orthanc),
                                                           StudyQuery(patient_id=patients[i % len(patients)]),
                                                           timeout=60)
                                       for i in range(100)), return_exceptions=True)
        return alone, found

    alone, found = asyncio.run(main())
    failures = [f for f in found if isinstance(f, BaseException)]
    assert failures == []
    for i, studies in enumerate(found):
        expected = alone[patients[i % len(patients)]]
        assert sorted(s.study_instance_uid for s in studies) == sorted(s.study_instance_uid for s in expected)
        assert all(s.patient_name is None for s in studies)


def test_a_timeout_stops_a_slow_peer_within_a_second(orthanc, corpus):
    proxy = RecordingProxy("127.0.0.1", orthanc.port, delay=0.2, chunk_size=64)
    try:
        seconds = seconds_to_time_out(lambda: AsyncClient(Settings()).find_instances(
            node_of(orthanc, proxy.port), InstanceQuery(), timeout=1.0))
        assert seconds < 2.0, f"{seconds:.2f} s for a timeout of 1 s"
        assert proxy.wait_idle(5), "the association was not ended"
    finally:
        proxy.close()


C_CANCEL_FIELD = struct.pack("<HHIH", 0x0000, 0x0100, 2, 0x0FFF)
A_RELEASE_RQ = bytes([A_RELEASE_RQ_PDU, 0, 0, 0, 0, 4])


def test_leaving_a_find_early_cancels_it_and_releases(orthanc, corpus):
    proxy = RecordingProxy("127.0.0.1", orthanc.port)

    async def first() -> str:
        async with AsyncClient(Settings()).iter_find(node_of(orthanc, proxy.port), Query.build("image"),
                                                     timeout=30) as matches:
            async for match in matches:
                return match.SOPInstanceUID
        return ""

    try:
        assert asyncio.run(first())
        assert proxy.wait_idle(5)
    finally:
        proxy.close()
    sent = bytes(proxy.sent)
    assert C_CANCEL_FIELD in sent, "no C-CANCEL-RQ was sent"
    assert sent.rfind(A_RELEASE_RQ) > sent.find(C_CANCEL_FIELD), "no release once the peer had stopped"
    assert sent[-10:-4] != bytes([A_ABORT_PDU, 0, 0, 0, 0, 4]), "aborted instead of released"


def test_a_pdu_over_our_maximum_is_aborted_as_an_invalid_parameter():
    notes: dict[str, object] = {}

    def script(conversation):
        conversation.link.read_message(5)
        conversation.link.send(struct.pack(">BBI", P_DATA_TF_PDU, 0, 1 << 20) + b"\0" * 64)
        notes["after"] = conversation.link.read_pdu(5)

    async def echo(address: str) -> None:
        await AsyncClient(Settings(max_pdu=16384)).echo(address, timeout=10)

    with RawAcceptor("HUGEPDU", script) as peer:
        with pytest.raises(AssociationAborted, match="at most 16384"):
            asyncio.run(echo(peer.address))
        assert peer.finished.wait(10) and not peer.errors, peer.errors
    received = notes["after"]
    assert received is not None and received[0] == A_ABORT_PDU, received
    abort = Abort.parse(received[1])
    assert (abort.source, abort.reason) == (SERVICE_PROVIDER, INVALID_PDU_PARAMETER_VALUE)


def test_a_malformed_pdv_is_aborted():
    notes: dict[str, object] = {}

    def script(conversation):
        request = conversation.link.read_message(5)
        item = struct.pack(">IBB", 200, request.context_id, 0x03) + b"\0" * 10
        conversation.link.send(pdu(P_DATA_TF_PDU, item))
        notes["after"] = conversation.link.read_pdu(5)

    with RawAcceptor("BADPDV", script) as peer:
        with pytest.raises(AssociationAborted, match="runs past the end"):
            asyncio.run(AsyncClient(Settings()).echo(peer.address, timeout=10))
        assert peer.finished.wait(10) and not peer.errors, peer.errors
    received = notes["after"]
    assert received is not None and received[0] == A_ABORT_PDU, received
    assert Abort.parse(received[1]).reason == INVALID_PDU_PARAMETER_VALUE


def test_a_peer_that_never_answers_the_release_is_aborted_after_the_timeout():
    notes: dict[str, object] = {}

    def script(conversation):
        request = conversation.link.read_message(5)
        conversation.link.send_message(request.context_id, c_echo_rsp(request.message_id or 0, VERIFICATION, SUCCESS))
        notes["release"] = conversation.link.read_pdu(5)
        asked = time.monotonic()
        notes["after"] = conversation.link.read_pdu(5)
        notes["seconds"] = time.monotonic() - asked

    with RawAcceptor("NORELEASE", script) as peer:
        result = asyncio.run(AsyncClient(Settings(dimse_timeout=1)).echo(peer.address, timeout=10))
        assert peer.finished.wait(10) and not peer.errors, peer.errors
    assert result.status == SUCCESS
    assert notes["release"] is not None and notes["release"][0] == A_RELEASE_RQ_PDU
    assert notes["after"] is not None and notes["after"][0] == A_ABORT_PDU, notes["after"]
    assert 0.8 <= notes["seconds"] <= 2.5, notes


def test_no_thread_runs_during_a_get(orthanc, corpus, tmp_path):
    before = set(threading.enumerate())
    seen: list[set[threading.Thread]] = []

    async def main():
        return await AsyncClient(Settings()).get_study(
            node_of(orthanc), corpus[0].study_uid, tmp_path / "out",
            progress=lambda state: seen.append(set(threading.enumerate())), timeout=60)

    result = asyncio.run(main())
    assert result.status == "success" and len(result.files) == 6
    assert seen and all(threads == before for threads in seen), [t.name for t in set.union(*seen) - before]


def test_a_cancelled_get_writes_nothing_after_the_cancel(orthanc, corpus, tmp_path):
    proxy = RecordingProxy("127.0.0.1", orthanc.port, delay=0.05, chunk_size=1024)
    out = tmp_path / "out"
    at_cancel: list[int] = []

    async def main() -> None:
        first = asyncio.Event()
        task = asyncio.create_task(AsyncClient(Settings()).get_study(
            node_of(orthanc, proxy.port), corpus[0].study_uid, out, timeout=60,
            progress=lambda state: first.set() if state.received else None))
        await asyncio.wait_for(first.wait(), 30)
        task.cancel()
        at_cancel.append(len(list(out.rglob("*.dcm"))))
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
        assert proxy.wait_idle(10), "the association was not ended"
    finally:
        proxy.close()
    assert 1 <= at_cancel[0] < 6, "the cancel came after the whole study"
    assert len(list(out.rglob("*.dcm"))) == at_cancel[0], "a file was written after the cancel"
    assert not [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".dcm")], "a partial file"
    assert struct.pack("<HHIH", 0x0000, 0x0100, 2, 0x0FFF) in bytes(proxy.sent), "no C-CANCEL-RQ was sent"


def test_dicom_tls_on_the_asyncio_driver(tmp_path, caplog):
    """The client context of net/tls.py on loop.create_connection (PduStream), against DCMTK's
    storescp +tls: the echo succeeds and the session is logged; a server certificate
    from another CA is refused before any PDU."""
    pki = make_certificates(tmp_path / "pki")
    other = make_certificates(tmp_path / "other")
    peer = StoreSCP(tmp_path / "storescp").use_tls(dcmtk_tls(pki.server.key, pki.server.certificate, pki.ca),
                                                   dcmtk_tls(pki.client.key, pki.client.certificate, pki.ca))

    def settings(ca) -> Settings:
        return Settings(tls=TlsSettings(certificate=pki.client.certificate, key=pki.client.key, ca=ca))

    with peer, caplog.at_level(logging.INFO, logger="pacskit"):
        result = asyncio.run(AsyncClient(settings(pki.ca)).echo(peer.address, timeout=30))
        assert result.status == SUCCESS
        session = [r.getMessage() for r in caplog.records if r.getMessage().startswith("TLS with")]
        assert session and "CN=localhost" in session[0], session
        with pytest.raises(TlsFailure):
            asyncio.run(AsyncClient(settings(other.ca)).echo(peer.address, timeout=30))


def test_the_exchange_log_is_the_same_on_both_drivers(orthanc, corpus, caplog):
    node = node_of(orthanc)
    query = StudyQuery(patient_id=corpus[0].patient_id)

    def blocking() -> None:
        Client(Settings()).echo(node)
        Client(Settings()).find_studies(node, query)

    def native() -> None:
        async def main() -> None:
            await AsyncClient(Settings()).echo(node)
            await AsyncClient(Settings()).find_studies(node, query)
        asyncio.run(main())

    sync_lines, async_lines = exchange_lines(caplog, blocking), exchange_lines(caplog, native)
    assert any("C-FIND-RSP" in line for line in sync_lines)
    assert sync_lines == async_lines


@pytest.mark.parametrize("over", ["dimse", "dicomweb"])
def test_a_deidentified_get_on_the_loop_writes_what_the_sync_one_writes(orthanc, corpus, tmp_path, over):
    from pydicom import dcmread

    from pacskit.settings import DeidentifySettings

    settings = Settings(deidentify=DeidentifySettings(secret="a test secret"))
    study = corpus[0].study_uid
    before = set(threading.enumerate())
    seen: list[set[threading.Thread]] = []
    node = node_of(orthanc) if over == "dimse" else orthanc.dicomweb_url
    result = asyncio.run(AsyncClient(settings).get_study(
        node, study, tmp_path / "async", deidentify=True, timeout=60,
        progress=lambda state: seen.append(set(threading.enumerate()))))
    Client(settings).get_study(node, study, tmp_path / "sync", deidentify=True).raise_for_status()
    assert result.status == "success" and len(result.files) == 6
    assert seen and all(threads == before for threads in seen)

    def written(folder) -> dict[str, object]:
        return {ds.SOPInstanceUID: ds for ds in (dcmread(p) for p in folder.rglob("*.dcm"))}

    on_loop, blocking = written(tmp_path / "async"), written(tmp_path / "sync")
    assert len(on_loop) == 6 and on_loop == blocking
    originals = {c.sop_instance_uid for c in corpus} | {c.patient_id for c in corpus}
    assert not originals & ({ds.SOPInstanceUID for ds in on_loop.values()} | {ds.PatientID for ds in on_loop.values()})
