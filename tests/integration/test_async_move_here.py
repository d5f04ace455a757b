"""C-MOVE to ourselves on the event loop (pacskit.net.aio_acceptor): dcmqrscp and Orthanc
move to a Storage SCP served by asyncio, no thread during the call, the same files as the
blocking Client, nothing written after a cancel; and the acceptor's policy against
DCMTK's storescu and a raw requestor (PS3.8 9.3.4, 9.3.8)."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import threading
import time

import pytest
from proxy import RecordingProxy
from pydicom import dcmread
from raw_pdu import (
    A_ASSOCIATE_RJ_PDU,
    INVALID_PDU_PARAMETER_VALUE,
    P_DATA_TF_PDU,
    SERVICE_PROVIDER,
    VERIFICATION,
    Abort,
    Proposed,
    associate_rq,
)
from raw_requestor import RawRequestor
from test_get import lying_move

from pacskit import AsyncClient, Client, Node, Settings
from pacskit.models import RetrieveResult
from pacskit.net.aio_acceptor import storage_scp
from pacskit.privacy import PATIENT_NAME_KEYWORDS

OUR_AET = "PACSKIT"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
C_CANCEL_FIELD = struct.pack("<HHIH", 0x0000, 0x0100, 2, 0x0FFF)


def node_of(peer, port: int | None = None) -> Node:
    return Node(ae_title=peer.ae_title, host="127.0.0.1", port=port or peer.port)


def written(folder) -> dict[str, object]:
    return {ds.SOPInstanceUID: ds for ds in (dcmread(p) for p in folder.rglob("*.dcm"))}


def comparable(result: RetrieveResult) -> dict:
    return result.model_dump(exclude={"seconds", "files"})


def test_no_thread_runs_during_a_move_to_ourselves_and_it_writes_what_the_sync_one_writes(
        moving_dcmqrscp, corpus, tmp_path, our_port):
    settings = Settings(ae_title=OUR_AET, port=our_port)
    patient = sorted({c.patient_id for c in corpus})[0]
    study = sorted({c.study_uid for c in corpus if c.patient_id == patient})[0]
    before = set(threading.enumerate())
    seen: list[set[threading.Thread]] = []

    async def main() -> tuple[RetrieveResult, RetrieveResult]:
        client = AsyncClient(settings)
        one = await client.get_study(node_of(moving_dcmqrscp), study, tmp_path / "async", method="move",
                                     progress=lambda state: seen.append(set(threading.enumerate())), timeout=60)
        seen.append(set(threading.enumerate()))
        from pacskit.level_queries import StudyQuery

        every = await client.get(node_of(moving_dcmqrscp), StudyQuery(patient_id=patient), tmp_path / "patient",
                                 method="move", timeout=60)
        seen.append(set(threading.enumerate()))
        return one, every

    one, every = asyncio.run(main())
    assert seen and all(threads == before for threads in seen), [t.name for t in set.union(*seen) - before]
    assert (one.method, one.status, one.completed, one.written, one.received) == ("move", "success", 6, 6, 6)
    assert (every.status, every.requests, every.written) == ("success", 2, 12)
    sync = Client(settings).get_study(node_of(moving_dcmqrscp), study, tmp_path / "sync", method="move")
    assert comparable(one) == comparable(sync)
    on_loop, blocking = written(tmp_path / "async"), written(tmp_path / "sync")
    assert len(on_loop) == 6 and on_loop == blocking
    assert sorted(p.relative_to(tmp_path / "async") for p in (tmp_path / "async").rglob("*.dcm")) == sorted(
        p.relative_to(tmp_path / "sync") for p in (tmp_path / "sync").rglob("*.dcm"))
    for ds in on_loop.values():
        assert not any(ds.get(keyword) for keyword in PATIENT_NAME_KEYWORDS)


def test_orthanc_moves_to_the_loop_into_memory(orthanc, corpus, our_port):
    orthanc.add_modality("pacskit", OUR_AET, "127.0.0.1", our_port)
    study = sorted({c.study_uid for c in corpus})[1]
    result = asyncio.run(AsyncClient(Settings(ae_title=OUR_AET, port=our_port)).get_study(
        node_of(orthanc), study, method="move", timeout=60))
    assert (result.method, result.status, result.completed) == ("move", "success", 6)
    assert sorted(ds.SOPInstanceUID for ds in result.instances) == sorted(
        c.sop_instance_uid for c in corpus if c.study_uid == study)
    assert all(not ds.get("PatientName") for ds in result.instances)


def test_a_cancelled_move_to_ourselves_sends_c_cancel_and_writes_nothing_after_it(
        moving_dcmqrscp, corpus, tmp_path, our_port):
    proxy = RecordingProxy("127.0.0.1", moving_dcmqrscp.port)
    out = tmp_path / "out"
    patient = sorted({c.patient_id for c in corpus})[1]
    at_cancel: list[int] = []

    async def main() -> None:
        from pacskit.level_queries import StudyQuery

        task: asyncio.Task[RetrieveResult] | None = None

        def on_progress(state) -> None:
            if state.received == 1 and task is not None and not at_cancel:
                task.cancel()
                at_cancel.append(len(list(out.rglob("*.dcm"))))

        task = asyncio.create_task(AsyncClient(Settings(ae_title=OUR_AET, port=our_port)).get(
            node_of(moving_dcmqrscp, proxy.port), StudyQuery(patient_id=patient), out, method="move",
            progress=on_progress, timeout=60))
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
        assert proxy.wait_idle(10), "the C-MOVE association was not ended"
    finally:
        proxy.close()
    assert at_cancel == [1]
    assert len(list(out.rglob("*.dcm"))) == 1, "a file was written after the cancel"
    assert not [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".dcm")], "a partial file"
    assert C_CANCEL_FIELD in bytes(proxy.sent), "no C-CANCEL-RQ was sent"


async def _serve(settings: Settings, script, **options):
    """Run ``script(port)`` in a thread (a blocking peer) against the Storage SCP on the loop."""
    async with storage_scp(settings, options.pop("on_instance", lambda data: None), port=0, **options) as acceptor:
        return await asyncio.to_thread(script, acceptor.port)


def test_storescu_stores_into_the_loop_acceptor(corpus, tmp_path):
    from pacskit.layout import DEFAULT_LAYOUT, Layout
    from pacskit.privacy import PrivacyPolicy
    from pacskit.retrieve import Receiver
    from pacskit.storage import FolderSink

    settings = Settings(ae_title=OUR_AET, bind_address="127.0.0.1")
    result = RetrieveResult(method="receive")
    sink = FolderSink(tmp_path / "in", Layout(DEFAULT_LAYOUT), privacy=PrivacyPolicy())
    sink.prepare()
    receiver = Receiver(result, sink, PrivacyPolicy(), None, None)
    files = [str(c.path) for c in corpus[:4]]

    def storescu(port: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["/usr/bin/storescu", "-aec", OUR_AET, "127.0.0.1", str(port), *files],
                              capture_output=True, text=True, timeout=60)

    done = asyncio.run(_serve(settings, storescu, on_instance=receiver))
    assert done.returncode == 0, done.stderr
    assert result.written == 4
    assert set(written(tmp_path / "in")) == {c.sop_instance_uid for c in corpus[:4]}
    assert all(not ds.get("PatientName") for ds in written(tmp_path / "in").values())

    def wrong_called(port: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["/usr/bin/storescu", "-aec", "SOMEONE", "127.0.0.1", str(port), files[0]],
                              capture_output=True, text=True, timeout=60)

    refused = asyncio.run(_serve(settings, wrong_called))
    assert refused.returncode != 0 and "Called AE Title Not Recognized" in refused.stdout + refused.stderr


def test_the_loop_acceptor_admits_only_the_peer_asked_to_move_and_aborts_a_hostile_one():
    settings = Settings(ae_title=OUR_AET, bind_address="127.0.0.1")
    mover = Node(ae_title="MOVER", host="127.0.0.1", port=104)

    def stranger(port: int) -> tuple[int, bytes]:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(associate_rq(OUR_AET, "STRANGER", [Proposed(1, VERIFICATION)]))
            header = sock.recv(6)
            return header[0], sock.recv(struct.unpack(">I", header[2:6])[0])

    pdu_type, body = asyncio.run(_serve(settings, stranger, peer=mover))
    assert pdu_type == A_ASSOCIATE_RJ_PDU and tuple(body[1:4]) == (0x01, 0x01, 0x03), body.hex()

    def admitted_then_hostile(port: int) -> tuple[int | None, Abort | None]:
        with RawRequestor("127.0.0.1", port, OUR_AET, calling="MOVER") as link:
            status = link.echo()
            link.send(struct.pack(">BBI", P_DATA_TF_PDU, 0, 1 << 30) + b"\0" * 64)
            return status, link.read_abort(5)

    status, aborted = asyncio.run(_serve(Settings(ae_title=OUR_AET, bind_address="127.0.0.1", max_pdu=16384),
                                         admitted_then_hostile, peer=mover))
    assert status == 0x0000
    assert aborted is not None and (aborted.source, aborted.reason) == (SERVICE_PROVIDER, INVALID_PDU_PARAMETER_VALUE)

    def released(port: int) -> None:
        with RawRequestor("127.0.0.1", port, OUR_AET, calling="MOVER") as link:
            assert link.echo() == 0x0000
            link.release()

    asyncio.run(_serve(settings, released, peer=mover))

    def silent(port: int) -> tuple[bytes, float]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            started = time.monotonic()
            return sock.recv(64), time.monotonic() - started

    closed, seconds = asyncio.run(_serve(Settings(ae_title=OUR_AET, bind_address="127.0.0.1", acse_timeout=1),
                                         silent, peer=mover))
    assert closed == b"" and 0.8 <= seconds < 3, (closed, seconds)


@pytest.mark.parametrize("final_first, deliver", [(True, 3), (False, 2)])
def test_the_loop_waits_for_late_instances_and_counts_those_that_never_come(corpus, tmp_path, final_first,
                                                                              deliver):
    from scripted_peer import ScriptedPeer

    from pacskit.level_queries import SeriesQuery
    from pacskit.testing.peers import free_port

    series = sorted({c.series_uid for c in corpus})[0]
    items = [c for c in corpus if c.series_uid == series]
    port = free_port()
    with ScriptedPeer("LIAR", lying_move([c.path for c in items], port, deliver, final_first)) as peer:
        result = asyncio.run(AsyncClient(Settings(ae_title=OUR_AET, port=port)).get(
            Node(ae_title="LIAR", host="127.0.0.1", port=peer.port),
            SeriesQuery(study_instance_uid=items[0].study_uid, series_instance_uid=series), tmp_path,
            method="move", timeout=60))
        assert peer.done.wait(10) and not peer.errors, peer.errors
    assert (result.completed, result.received, result.written) == (3, deliver, deliver)
    assert result.not_received == 3 - deliver
    if deliver < 3:
        assert result.delivery is not None
        assert (result.delivery.host, result.delivery.port, result.delivery.connections) == ("127.0.0.1", port, 1)
    else:
        assert result.delivery is None


def test_an_instance_already_buffered_when_the_move_is_cancelled_is_refused(corpus, tmp_path):
    """Two C-STOREs sent in one write: the second is read from the buffer without the loop
    running the cancelled task in between; it is still refused."""
    from pydicom import dcmread
    from pynetdicom.dsutils import encode
    from raw_pdu import IMPLICIT_LE, message_pdvs, p_data_tf
    from scripted_peer import ScriptedPeer

    from pacskit.level_queries import SeriesQuery
    from pacskit.net.commands import C_MOVE_RSP, MESSAGE_ID, c_store_rq, retrieve_rsp
    from pacskit.testing.peers import free_port

    series = sorted({c.series_uid for c in corpus})[1]
    items = [c for c in corpus if c.series_uid == series][:2]
    datasets = [dcmread(c.path) for c in items]
    sop_class = str(datasets[0].SOPClassUID)
    port = free_port()
    statuses: list[int | None] = []

    def script(conversation):
        request = conversation.receive()
        with RawRequestor("127.0.0.1", port, OUR_AET, [Proposed(1, sop_class, (IMPLICIT_LE,))],
                          calling="LIAR") as link:
            link.send(b"".join(p_data_tf(*message_pdvs(1, c_store_rq(n + 1, sop_class, str(ds.SOPInstanceUID)),
                                                       encode(ds, True, True)))
                               for n, ds in enumerate(datasets)))
            statuses.extend(link.read_message(10).status for _ in datasets)
        conversation.channel.send(request.context_id, retrieve_rsp(
            C_MOVE_RSP, request.us(MESSAGE_ID) or 0, conversation.contexts[request.context_id][0], 0x0000,
            (None, 2, 0, 0)))

    async def main(address: Node) -> None:
        task: asyncio.Task[RetrieveResult] | None = None

        def on_progress(state) -> None:
            if state.received == 1 and task is not None:
                task.cancel()

        task = asyncio.create_task(AsyncClient(Settings(ae_title=OUR_AET, port=port)).get(
            address, SeriesQuery(study_instance_uid=items[0].study_uid, series_instance_uid=series),
            tmp_path, method="move", progress=on_progress, timeout=60))
        with pytest.raises(asyncio.CancelledError):
            await task

    with ScriptedPeer("LIAR", script) as peer:
        asyncio.run(main(Node(ae_title="LIAR", host="127.0.0.1", port=peer.port)))
        assert peer.done.wait(10)
    assert statuses[0] == 0x0000 and statuses[1] not in (None, 0x0000), statuses
    assert len(list(tmp_path.rglob("*.dcm"))) == 1, "the buffered instance was written after the cancel"


def test_a_timeout_sends_c_cancel_then_aborts_a_peer_that_goes_on(corpus, tmp_path):
    """A C-MOVE SCP that delivers one instance, then neither ends nor answers the
    C-CANCEL: the call raises TimeoutError about its timeout, C-CANCEL-RQ then A-ABORT
    reach the peer, and nothing more is written."""
    from raw_acceptor import RawAcceptor

    from pacskit.level_queries import SeriesQuery
    from pacskit.net.commands import C_MOVE_RSP, retrieve_rsp
    from pacskit.net.store import send_files
    from pacskit.scan import read_file
    from pacskit.testing.peers import free_port

    series = sorted({c.series_uid for c in corpus})[2]
    items = [c for c in corpus if c.series_uid == series]
    port = free_port()
    notes: dict[str, object] = {}

    def script(conversation):
        request = conversation.link.read_message(10)
        send_files(Settings(ae_title="SLOWMOVE"), Node(ae_title=OUR_AET, host="127.0.0.1", port=port),
                   [read_file(items[0].path)], lambda outcome: None)
        conversation.link.send_message(request.context_id, retrieve_rsp(
            C_MOVE_RSP, request.message_id or 0, STUDY_ROOT_MOVE, 0xFF00, (2, 1, 0, 0)))
        notes["cancel"] = conversation.link.read_message(10).command_field
        notes["after"] = conversation.link.read_pdu(10)

    async def main(address: str) -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await AsyncClient(Settings(ae_title=OUR_AET, port=port)).get(
                address, SeriesQuery(study_instance_uid=items[0].study_uid, series_instance_uid=series),
                tmp_path, method="move", timeout=2.0)
        return time.monotonic() - started

    with RawAcceptor("SLOWMOVE", script) as peer:
        seconds = asyncio.run(main(peer.address))
        assert peer.finished.wait(10) and not peer.errors, peer.errors
    assert seconds < 3.5, f"{seconds:.2f} s for a timeout of 2 s"
    assert notes["cancel"] == 0x0FFF, notes
    assert notes["after"] is not None and notes["after"][0] == 0x07, notes["after"]
    assert len(list(tmp_path.rglob("*.dcm"))) == 1
