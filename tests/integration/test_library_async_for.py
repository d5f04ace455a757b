"""``async for`` over find results: each arrives as the peer sends it, not after the
whole find; leaving early cancels the find (C-CANCEL) and frees the association."""

from __future__ import annotations

import asyncio
import struct
import threading

import pytest
from proxy import RecordingProxy

from pacskit import AsyncClient, Node, Settings
from pacskit.level_queries import InstanceQuery
from pacskit.query import Query
from pacskit.results import InstanceResult


@pytest.fixture
def slow(orthanc):
    """Orthanc behind a proxy passing on what it sends 256 bytes every 0.05 s."""
    proxy = RecordingProxy("127.0.0.1", orthanc.port, delay=0.05, chunk_size=256)
    yield proxy
    proxy.close()


def node_of(proxy: RecordingProxy, orthanc) -> Node:
    return Node(ae_title=orthanc.ae_title, host="127.0.0.1", port=proxy.port)


def test_results_arrive_before_the_find_ends(orthanc, slow, corpus):
    query = InstanceQuery(study_instance_uid=corpus[0].study_uid)

    async def main():
        client = AsyncClient(Settings())
        seen_at = []
        async with client.iter_results(node_of(slow, orthanc), query, timeout=60) as results:
            async for result in results:
                assert isinstance(result, InstanceResult)
                seen_at.append(slow.received)
        return seen_at

    seen_at = asyncio.run(main())
    assert len(seen_at) == 6
    # Bytes the peer had sent when each result was seen: a find that waited for its end
    # would see every result at the same count.
    assert seen_at[0] < seen_at[-1], "the first answer came before the peer sent the rest"


def test_leaving_early_stops_the_find(orthanc, corpus):
    query = Query.build("image", study_uid=corpus[0].study_uid)

    async def first_of(proxy: RecordingProxy, *, whole: bool) -> list[str]:
        got = []
        async with AsyncClient(Settings()).iter_find(node_of(proxy, orthanc), query, timeout=60) as matches:
            async for match in matches:
                got.append(match.SOPInstanceUID)
                if not whole:
                    break
        return got

    reference = RecordingProxy("127.0.0.1", orthanc.port)
    # the rest trickles in over more than CANCEL_GRACE: the C-CANCEL is not honoured in time
    slow = RecordingProxy("127.0.0.1", orthanc.port, delay=0.2, chunk_size=256)
    try:
        assert len(asyncio.run(first_of(reference, whole=True))) == 6
        assert len(asyncio.run(first_of(slow, whole=False))) == 1
        assert slow.received < reference.received, "the rest of the answers were not read"
        assert struct.pack("<HHIH", 0x0000, 0x0100, 2, 0x0FFF) in bytes(slow.sent), "C-CANCEL-RQ first"
        assert not [t for t in threading.enumerate() if t.name == "pacskit-answers"]
    finally:
        reference.close()
        slow.close()


@pytest.mark.parametrize("peer", ["orthanc", "pacskit-serve"])
def test_a_timed_out_retrieve_writes_nothing_after_the_timeout(peer, orthanc, corpus, tmp_path):
    from served import CLIENT_NODES, served_archive

    def run(port: int) -> tuple[int, int]:
        proxy = RecordingProxy("127.0.0.1", port, delay=0.05, chunk_size=1024)
        node = Node(ae_title=orthanc.ae_title if peer == "orthanc" else "ARCHIVE", host="127.0.0.1",
                    port=proxy.port)
        out = tmp_path / "out"

        async def main() -> int:
            with pytest.raises(TimeoutError):
                await AsyncClient(Settings()).get_study(node, corpus[0].study_uid, out, timeout=1.0)
            return len(list(out.rglob("*.dcm")))

        try:
            at_timeout = asyncio.run(main())
            assert proxy.wait_idle(60), "the association ended"
            return at_timeout, len(list(out.rglob("*.dcm")))
        finally:
            proxy.close()

    if peer == "orthanc":
        at_timeout, after = run(orthanc.port)
    else:
        with served_archive(tmp_path / "serve", [c.path for c in corpus], nodes=CLIENT_NODES) as archive:
            at_timeout, after = run(archive.settings.port)
    assert at_timeout < 6, "the timeout came before the whole study"
    assert after == at_timeout, "nothing was written after the timeout"
