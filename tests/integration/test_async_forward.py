"""The forward storage mode on the event loop (pacskit.aio_forward): AsyncClient.get with
forward_to a DIMSE node, from Orthanc by C-GET and by C-MOVE to ourselves, sent on to
DCMTK's storescp over one kept association; no worker thread; a destination refusing one
SOP class; a cancel after which nothing more is forwarded; the connection limit."""

from __future__ import annotations

import asyncio
import threading

import pytest
from no_threads import run_without_threads
from pydicom import dcmread

from pacskit import AsyncClient, Node, Settings
from pacskit.client import study_query
from pacskit.testing.peers import StoreSCP

OUR_AET = "PACSKIT"


def node_of(peer) -> Node:
    return Node(ae_title=peer.ae_title, host="127.0.0.1", port=peer.port)


def study_of(corpus):
    study = sorted({c.study_uid for c in corpus})[0]
    return study, [c for c in corpus if c.study_uid == study]


def received_uids(storescp: StoreSCP) -> list[str]:
    return sorted(str(dcmread(p).SOPInstanceUID) for p in storescp.received())


def storing_associations(storescp: StoreSCP) -> int:
    text = storescp.log_path.read_text(errors="replace")
    return sum("Store Request" in part for part in text.split("Association Received")[1:])


@pytest.mark.parametrize("method", ["get", "move"])
def test_a_forward_from_orthanc_reaches_storescp_on_one_association_and_no_thread(
        orthanc_moving, corpus, tmp_path, monkeypatch, method, our_port):
    study, items = study_of(corpus)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    storescp = StoreSCP(tmp_path / "storescp")
    storescp.extra_args = ["-v"]
    before = set(threading.enumerate())
    seen: list[set[threading.Thread]] = []
    settings = Settings(ae_title=OUR_AET, port=our_port)

    async def main():
        client = AsyncClient(settings)
        result = await client.get(node_of(orthanc_moving), study_query(study), method=method,
                                  forward_to=storescp.address, timeout=60,
                                  progress=lambda state: seen.append(set(threading.enumerate())))
        seen.append(set(threading.enumerate()))
        return result, client.connections.held(node_of(storescp))

    with storescp:
        result, held = run_without_threads(main)
        assert received_uids(storescp) == sorted(c.sop_instance_uid for c in items)
        assert storing_associations(storescp) == 1, storescp.log()
    assert len(seen) > len(items) and all(threads == before for threads in seen), \
        [t.name for t in set.union(*seen) - before]
    assert (result.method, result.status, result.written, result.received) == (method, "success", len(items),
                                                                                len(items))
    assert (result.failed, result.local_failures, result.instances) == (0, [], [])
    assert held == 0
    assert not list((tmp_path / "cwd").rglob("*"))


class OneClassStoreSCP(StoreSCP):
    """storescp on an association profile (``--config-file``, which excludes its
    transfer syntax options)."""

    def command(self) -> list[str]:
        return [arg for arg in super().command() if arg not in ("+xa", "+x=")]


def only_class_profile(tmp_path, sop_class: str):
    """A storescp association profile accepting one storage SOP class (and Verification)."""
    profile = tmp_path / "only.cfg"
    profile.write_text("\n".join([
        "[[TransferSyntaxes]]", "[Plain]", "TransferSyntax1 = 1.2.840.10008.1.2.1",
        "TransferSyntax2 = 1.2.840.10008.1.2",
        "[[PresentationContexts]]", "[Only]", f"PresentationContext1 = {sop_class}\\Plain",
        "PresentationContext2 = 1.2.840.10008.1.1\\Plain",
        "[[Profiles]]", "[Only]", "PresentationContexts = Only", ""]))
    return profile


@pytest.mark.parametrize("method", ["get", "move"])
def test_a_destination_refusing_a_sop_class_fails_those_instances_each_and_takes_the_rest(
        request, corpus, tmp_path, method):
    """By C-GET from Orthanc, by C-MOVE from dcmqrscp (Orthanc ends a C-MOVE at its
    first failed sub-operation with 0xC000, the blocking path raises the same)."""
    if method == "get":
        source, port = request.getfixturevalue("orthanc"), 0
    else:
        source, port = request.getfixturevalue("moving_dcmqrscp"), request.getfixturevalue("our_port")
    study, items = study_of(corpus)
    classes = sorted({dcmread(c.path).SOPClassUID for c in items})
    assert len(classes) >= 2, classes
    kept = [c for c in items if dcmread(c.path).SOPClassUID == classes[0]]
    refused = {c.sop_instance_uid for c in items} - {c.sop_instance_uid for c in kept}
    storescp = OneClassStoreSCP(tmp_path / "storescp")
    storescp.extra_args = ["-v", "--config-file", str(only_class_profile(tmp_path, classes[0])), "Only"]

    async def main():
        client = AsyncClient(Settings(ae_title=OUR_AET, port=port or 104))
        return await client.get(node_of(source), study_query(study), method=method,
                                forward_to=storescp.address, timeout=60)

    with storescp:
        result = asyncio.run(main())
        assert received_uids(storescp) == sorted(c.sop_instance_uid for c in kept), storescp.log()
    assert result.written == len(kept)
    assert {f.sop_instance_uid for f in result.local_failures} == refused
    assert all("does not accept SOP class" in f.reason for f in result.local_failures), result.local_failures
    assert result.failed == len(refused)
    assert result.status != "success"


@pytest.mark.parametrize("method", ["get", "move"])
def test_nothing_is_forwarded_after_the_cancel(orthanc_moving, corpus, tmp_path, method, our_port):
    study, items = study_of(corpus)
    storescp = StoreSCP(tmp_path / "storescp")
    forwarded: list[int] = []

    async def main():
        task = asyncio.current_task()
        client = AsyncClient(Settings(ae_title=OUR_AET, port=our_port))

        def progress(state):
            if state.received not in forwarded:
                forwarded.append(state.received)
                if state.received == 2:
                    task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await client.get(node_of(orthanc_moving), study_query(study), method=method,
                             forward_to=storescp.address, progress=progress, timeout=60)
        return client.connections.held(node_of(storescp))

    with storescp:
        held = asyncio.run(main())
        at_cancel = received_uids(storescp)
    assert len(items) > 2
    assert forwarded == [1, 2]
    assert held == 0
    assert len(at_cancel) == 2
    assert received_uids(storescp) == at_cancel


def test_the_forward_association_takes_a_slot_of_the_connection_limit(orthanc, corpus, tmp_path):
    study, items = study_of(corpus)
    storescp = StoreSCP(tmp_path / "storescp")
    peaks: list[int] = []

    async def main():
        client = AsyncClient(Settings(ae_title=OUR_AET), max_connections=1)
        target = None

        def progress(state):
            peaks.append(client.connections.held(target))

        async with client.connections.slot(node_of(storescp)):
            target = node_of(storescp)
            call = asyncio.ensure_future(client.get(node_of(orthanc), study_query(study),
                                                    forward_to=storescp.address, progress=progress, timeout=60))
            for _ in range(3000):  # until the forward waits for the slot, at most 30 s
                await asyncio.sleep(0.01)
                if client.connections.waiting(target):
                    break
            waiting = client.connections.waiting(target)
            assert not call.done()
            landed = len(storescp.received())
        result = await call
        return waiting, landed, result

    with storescp:
        waiting, landed, result = asyncio.run(main())
        assert len(storescp.received()) == len(items)
    assert (waiting, landed) == (1, 0)
    assert result.written == len(items) and set(peaks) == {1}



def test_a_deidentified_forward_sends_what_the_blocking_one_sends(orthanc, corpus, tmp_path):
    from pacskit import Client
    from pacskit.settings import DeidentifySettings

    study, items = study_of(corpus)
    settings = Settings(ae_title=OUR_AET, deidentify=DeidentifySettings(secret="a test secret"))
    arrived = {}
    for name in ("async", "sync"):
        storescp = StoreSCP(tmp_path / name)
        with storescp:
            if name == "async":
                result = asyncio.run(AsyncClient(settings).get(node_of(orthanc), study_query(study), deidentify=True,
                                                               forward_to=storescp.address, timeout=60))
            else:
                result = Client(settings).get(node_of(orthanc), study_query(study), deidentify=True,
                                              forward_to=storescp.address)
            assert result.written == len(items), result
            arrived[name] = {ds.SOPInstanceUID: ds for ds in map(dcmread, storescp.received())}
    assert len(arrived["async"]) == len(items) and arrived["async"] == arrived["sync"]
    originals = {c.sop_instance_uid for c in items} | {c.patient_id for c in items}
    assert not originals & ({ds.SOPInstanceUID for ds in arrived["async"].values()}
                            | {ds.PatientID for ds in arrived["async"].values()})
