"""AsyncClient's C-MOVE and C-STORE on the native asyncio driver, against DCMTK:
no thread during the call, the same results and exchange log as the blocking Client,
a cancellation that sends C-CANCEL (PS3.7 9.3.4.3) and a timeout behind a slow proxy."""

from __future__ import annotations

import asyncio
import struct
import threading
import time

import pytest
from driver_checks import exchange_lines, seconds_to_time_out
from proxy import RecordingProxy

from pacskit import AsyncClient, Client, Node, Settings
from pacskit.errors import MoveDestinationUnknown
from pacskit.models import MoveProgress
from pacskit.testing.peers import DcmQrSCP, StoreSCP

C_CANCEL_FIELD = struct.pack("<HHIH", 0x0000, 0x0100, 2, 0x0FFF)
A_RELEASE_RQ = bytes([0x05, 0, 0, 0, 0, 4])
A_ABORT = bytes([0x07, 0, 0, 0, 0, 4])
CLOSED_PORT_AET = "NOBODY"


def node_of(peer, port: int | None = None) -> Node:
    return Node(ae_title=peer.ae_title, host="127.0.0.1", port=port or peer.port)


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mover(tmp_path, corpus_dir, storescp):
    """dcmqrscp holding the corpus, knowing storescp and an AE title on a closed port."""
    destinations = {storescp.ae_title: ("127.0.0.1", storescp.port), CLOSED_PORT_AET: ("127.0.0.1", closed_port())}
    with DcmQrSCP(tmp_path / "q", move_destinations=destinations) as peer:
        peer.load([corpus_dir])
        yield peer


def comparable(result) -> dict:
    return result.model_dump(exclude={"seconds"})


def test_no_thread_runs_during_a_move_and_it_ends_as_the_sync_one(mover, storescp, corpus):
    study = corpus[0].study_uid
    before = set(threading.enumerate())
    seen: list[set[threading.Thread]] = []
    progress: list[MoveProgress] = []

    def on_progress(state: MoveProgress) -> None:
        seen.append(set(threading.enumerate()))
        progress.append(state)

    async def main():
        client = AsyncClient(Settings())
        moved = await client.move_study(node_of(mover), study, storescp.ae_title, progress=on_progress, timeout=60)
        seen.append(set(threading.enumerate()))
        failed = await client.move_study(node_of(mover), study, CLOSED_PORT_AET, timeout=60)
        return moved, failed

    moved, failed = asyncio.run(main())
    assert seen and all(threads == before for threads in seen), [t.name for t in set.union(*seen) - before]
    assert (moved.status, moved.completed, moved.failed) == ("success", 6, 0)
    assert progress[-1].done == 6 and progress[-1].total == 6 and len(progress) >= 6
    assert failed.status == "failure" and failed.failed == 6
    assert sorted(failed.failed_instances) == sorted(c.sop_instance_uid for c in corpus if c.study_uid == study)

    sync = Client(Settings())
    assert comparable(moved) == comparable(sync.move_study(node_of(mover), study, storescp.ae_title))
    assert comparable(failed) == comparable(sync.move_study(node_of(mover), study, CLOSED_PORT_AET))
    assert sorted(p.name.split(".", 1)[1] for p in storescp.received()) == sorted(
        c.sop_instance_uid for c in corpus if c.study_uid == study)


def test_a_move_by_patient_plans_with_a_find_on_the_loop_as_the_sync_one(mover, storescp, corpus):
    from pacskit.level_queries import StudyQuery

    patient = sorted({c.patient_id for c in corpus})[1]
    query = StudyQuery(patient_id=patient)
    moved = asyncio.run(AsyncClient(Settings()).move(node_of(mover), query, storescp.ae_title, timeout=60))
    assert moved.requests == 2 and moved.completed == 12 and moved.check is not None
    assert comparable(moved) == comparable(Client(Settings()).move(node_of(mover), query, storescp.ae_title))
    with pytest.raises(MoveDestinationUnknown):
        asyncio.run(AsyncClient(Settings()).move(node_of(mover), query, "UNKNOWN", timeout=60))


def test_the_exchange_log_of_a_move_is_the_same_on_both_drivers(mover, storescp, corpus, caplog):
    node, study = node_of(mover), corpus[0].study_uid
    sync_lines = exchange_lines(caplog, lambda: Client(Settings()).move_study(node, study, storescp.ae_title))
    async_lines = exchange_lines(caplog, lambda: asyncio.run(
        AsyncClient(Settings()).move_study(node, study, storescp.ae_title)))
    assert any("C-MOVE-RSP" in line for line in sync_lines), sync_lines
    assert sync_lines == async_lines


@pytest.fixture
def slow_mover(tmp_path, corpus_dir):
    """dcmqrscp holding the corpus, moving to a storescp that sleeps a second per instance."""
    with StoreSCP(tmp_path / "slow", ae_title="SLOWSCP", sleep_during=1) as slow, \
            DcmQrSCP(tmp_path / "q", move_destinations={"SLOWSCP": ("127.0.0.1", slow.port)}) as peer:
        peer.load([corpus_dir])
        yield peer, slow


def test_a_cancelled_move_sends_c_cancel_then_ends_the_association(slow_mover, corpus):
    """dcmqrscp answers a C-CANCEL only once its sub-operation in progress (a second
    long) is done: past the grace the association is aborted, else released."""
    peer, slow = slow_mover
    proxy = RecordingProxy("127.0.0.1", peer.port)
    done_at_cancel: list[float] = []

    async def main() -> None:
        first = asyncio.Event()

        def on_progress(state: MoveProgress) -> None:
            if state.done:
                first.set()

        task = asyncio.create_task(AsyncClient(Settings()).move_study(
            node_of(peer, proxy.port), corpus[0].study_uid, "SLOWSCP", progress=on_progress, timeout=60))
        await asyncio.wait_for(first.wait(), 30)
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        done_at_cancel.append(time.monotonic() - started)

    try:
        asyncio.run(main())
        assert proxy.wait_idle(10), "the association was not ended"
    finally:
        proxy.close()
    sent = bytes(proxy.sent)
    assert C_CANCEL_FIELD in sent, "no C-CANCEL-RQ was sent"
    assert done_at_cancel[0] < 3.0, f"{done_at_cancel[0]:.2f} s from the cancel to the end"
    ended = sent[-10:]
    assert A_RELEASE_RQ in ended or A_ABORT in ended, f"neither released nor aborted: {ended.hex()}"


def test_a_move_times_out_behind_a_slow_proxy(slow_mover, corpus):
    peer, _ = slow_mover
    proxy = RecordingProxy("127.0.0.1", peer.port, delay=0.05, chunk_size=256)
    try:
        seconds = seconds_to_time_out(lambda: AsyncClient(Settings()).move_study(
            node_of(peer, proxy.port), corpus[0].study_uid, "SLOWSCP", timeout=1.5))
        assert seconds < 2.5, f"{seconds:.2f} s for a timeout of 1.5 s"
        assert proxy.wait_idle(5), "the association was not ended"
    finally:
        proxy.close()
    assert C_CANCEL_FIELD in bytes(proxy.sent), "no C-CANCEL-RQ was sent on the timeout"


def files_to_store(corpus, tmp_path):
    """The corpus, a text file, and a DICOM file cut after its file meta information."""
    from pacskit.scan import scan

    folder = tmp_path / "to-store"
    folder.mkdir()
    (folder / "notes.txt").write_text("not DICOM")
    first = scan([corpus[0].path]).files[0]
    (folder / "meta-only.dcm").write_bytes(corpus[0].path.read_bytes()[:first.dataset_offset])
    return [c.path for c in corpus] + [folder]


def comparable_store(result) -> dict:
    dumped = result.model_dump(exclude={"seconds"})
    dumped["failures"] = sorted(dumped["failures"], key=lambda f: str(f["path"]))
    return dumped


def test_no_thread_runs_during_a_store_over_two_associations_and_it_ends_as_the_sync_one(storescp, corpus,
                                                                                          tmp_path):
    from pacskit.scan import scan

    paths = files_to_store(corpus, tmp_path)
    before = set(threading.enumerate())
    seen: list[set[threading.Thread]] = []

    async def main():
        return await AsyncClient(Settings()).store(paths, storescp.address, parallel=2, timeout=60,
                                                   progress=lambda state: seen.append(set(threading.enumerate())))

    stored = asyncio.run(main())
    assert len(seen) == len(corpus) + 1 and all(threads == before for threads in seen), \
        [t.name for t in set.union(*seen) - before]
    assert (stored.sent, stored.failed, stored.not_dicom) == (len(corpus), 1, 1)
    assert "no dataset after its file meta" in stored.failures[0].reason
    received = {p.name.split(".", 1)[1]: p.read_bytes() for p in storescp.received()}
    for item in scan([c.path for c in corpus]).files:
        assert received[item.sop_instance_uid].endswith(item.path.read_bytes()[item.dataset_offset:]), \
            "not sent as it is on disk"
    assert comparable_store(stored) == comparable_store(Client(Settings()).store(paths, storescp.address, parallel=2))


def test_the_exchange_log_of_a_store_is_the_same_on_both_drivers(storescp, corpus, caplog):
    paths = [c.path for c in corpus[:4]]
    sync_lines = exchange_lines(caplog, lambda: Client(Settings()).store(paths, storescp.address))
    async_lines = exchange_lines(caplog, lambda: asyncio.run(AsyncClient(Settings()).store(paths, storescp.address)))
    assert sum("Received C-STORE-RSP" in line for line in sync_lines) == 4, sync_lines
    assert sync_lines == async_lines


def test_a_store_that_times_out_aborts_its_associations(tmp_path, corpus):
    """storescp serves one association at a time and sleeps a second per instance: at the
    timeout one association is mid-store, the other still waits for its A-ASSOCIATE-AC;
    both are aborted (PS3.8 Table 9-10: AA-1 in Sta5 and Sta6)."""
    with StoreSCP(tmp_path / "slow", ae_title="SLOWSCP", sleep_during=1) as slow:
        proxy = RecordingProxy("127.0.0.1", slow.port)
        try:
            seconds = seconds_to_time_out(lambda: AsyncClient(Settings()).store(
                [c.path for c in corpus], node_of(slow, proxy.port), parallel=2, timeout=1.5))
            assert seconds < 2.5, f"{seconds:.2f} s for a timeout of 1.5 s"
            assert proxy.wait_idle(5), "an association was not ended"
        finally:
            proxy.close()
        assert proxy.connections == 2
        assert bytes(proxy.sent).count(A_ABORT) == 2, "the two associations were not aborted"
        assert len(slow.received()) < len(corpus)
