"""The forward storage mode to and from DICOMweb on the event loop (pacskit.aio_forward's
AsyncWebSink): AsyncClient.get with forward_to Orthanc's STOW-RS, from Orthanc by C-GET,
by C-MOVE to ourselves and by WADO-RS, in batches of 50 held in a scratch folder, with no
worker thread; an instance `pacskit serve` refuses reported with its reason; a cancel
after which nothing more reaches the destination; from DICOMweb to storescp."""

from __future__ import annotations

import asyncio
import tempfile
import threading

import pytest
from no_threads import run_without_threads
from proxy import RecordingProxy
from pydicom import dcmread
from served import served_archive, web_url

from pacskit import AsyncClient, Client, Node, Settings
from pacskit.cancellation import Cancellation
from pacskit.client import study_query
from pacskit.query import Query
from pacskit.retrieve import CANCELLED
from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import Orthanc, StoreSCP

OUR_AET = "PACSKIT"


@pytest.fixture(scope="module")
def big_study(tmp_path_factory, orthanc):
    """A study of 60 instances (two series of 30) in Orthanc: two STOW-RS batches."""
    items = generate_corpus(tmp_path_factory.mktemp("big"), patients=1, studies_per_patient=1, series_per_study=2,
                            instances_per_series=30, seed=91)
    orthanc.load([c.path for c in items])
    return items


@pytest.fixture(scope="module")
def destination(tmp_path_factory):
    with Orthanc(tmp_path_factory.mktemp("destination")) as peer:
        yield peer


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The folder temporary files go to, watched for the STOW-RS scratch folders."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def held_uids(url: str, study: str) -> set[str]:
    """What the DICOMweb server at ``url`` holds of ``study``, by QIDO-RS."""
    return {str(m.SOPInstanceUID) for m in Client(Settings()).find(url, Query.build("image", study_uid=study))}


def threads() -> set[threading.Thread]:
    """The threads running, but the recording proxy's own (one per connection)."""
    return {t for t in threading.enumerate() if "(_pump)" not in t.name}


def node_of(peer) -> Node:
    return Node(ae_title=peer.ae_title, host="127.0.0.1", port=peer.port)


def stow_requests(proxy: RecordingProxy) -> int:
    return bytes(proxy.sent).count(b"POST /dicom-web/studies")


@pytest.mark.parametrize("how", ["c-get", "c-move", "wado-rs"])
def test_a_forward_to_stow_rs_delivers_every_instance_in_batches_of_fifty_and_no_thread(
        orthanc_moving, destination, big_study, scratch, our_port, how):
    destination.clear()
    study = big_study[0].study_uid
    proxy = RecordingProxy("127.0.0.1", destination.http_port)
    before = threads()
    seen: list[set[threading.Thread]] = []

    async def main():
        client = AsyncClient(Settings(ae_title=OUR_AET, port=our_port))
        origin = orthanc_moving.dicomweb_url if how == "wado-rs" else node_of(orthanc_moving)
        result = await client.get(origin, study_query(study), method="move" if how == "c-move" else "get",
                                  forward_to=f"http://127.0.0.1:{proxy.port}/dicom-web", timeout=120,
                                  progress=lambda state: seen.append(threads()))
        seen.append(threads())
        return result

    try:
        result = run_without_threads(main)
        requests = stow_requests(proxy)
    finally:
        proxy.close()
    assert held_uids(destination.dicomweb_url, study) == {c.sop_instance_uid for c in big_study}
    assert requests == 2
    assert len(seen) > len(big_study) and all(threads == before for threads in seen), \
        [t.name for t in set.union(*seen) - before]
    assert (result.status, result.written, result.local_failures, result.instances) == ("success", 60, [], [])
    assert result.method == {"c-get": "get", "c-move": "move", "wado-rs": "wado-rs"}[how]
    assert list(scratch.iterdir()) == []


def test_an_instance_the_server_refuses_is_reported_with_its_reason(orthanc, corpus, tmp_path, scratch):
    """`pacskit serve` holding one of the study's series under another study refuses
    that series' instances (PS3.4 C.6.1.1.3); the other series goes in."""
    study = corpus[0].study_uid
    refused = {c.sop_instance_uid for c in corpus if c.series_uid == corpus[0].series_uid}
    clash = dcmread(corpus[0].path)
    clash.StudyInstanceUID = "1.2.3.4.5"
    clash.SOPInstanceUID = clash.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6"
    clash.save_as(tmp_path / "clash.dcm", enforce_file_format=True)
    with served_archive(tmp_path / "serve", [tmp_path / "clash.dcm"]) as archive:
        result = run_without_threads(lambda: AsyncClient(Settings()).get(
            node_of(orthanc), study_query(study), forward_to=web_url(archive), timeout=60))
        held = held_uids(web_url(archive), study)
    wanted = {c.sop_instance_uid for c in corpus if c.study_uid == study}
    assert held == wanted - refused
    assert {f.sop_instance_uid for f in result.local_failures} == refused
    assert all("another study" in f.reason for f in result.local_failures), result.local_failures
    assert result.written == len(wanted - refused)
    assert result.status != "success"
    assert list(scratch.iterdir()) == []


def only_the_first_batch_arrived(proxy: RecordingProxy, destination, study: str, arrived: list[str],
                                 scratch) -> None:
    """The destination got one STOW-RS request, the first batch of 50 (``arrived``, what it
    held when the cancel came), and no more; the proxy is closed and the scratch folder empty."""
    try:
        assert proxy.wait_idle(10), "a connection to the destination stayed open"
        requests = stow_requests(proxy)
    finally:
        proxy.close()
    assert len(arrived) == 50
    assert held_uids(destination.dicomweb_url, study) == set(arrived)
    assert requests == 1
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("how", ["task", "cancellation"])
def test_nothing_reaches_the_destination_after_the_cancel(orthanc_moving, destination, big_study, scratch, how):
    """Cancelled at the 55th instance (the awaiting task, or ``cancellation=``): the
    first batch (50) was sent, the 5 held since never are (with ``cancellation=``, the
    result says so), and the scratch folder is gone."""
    destination.clear()
    study = big_study[0].study_uid
    proxy = RecordingProxy("127.0.0.1", destination.http_port)
    arrived: list[str] = []
    stop = Cancellation()

    async def main():
        task = asyncio.current_task()

        def progress(state):
            if state.received == 55 and not arrived:
                arrived.extend(held_uids(destination.dicomweb_url, study))
                stop.cancel() if how == "cancellation" else task.cancel()

        call = AsyncClient(Settings()).get(node_of(orthanc_moving), study_query(study), progress=progress,
                                           timeout=120, cancellation=stop,
                                           forward_to=f"http://127.0.0.1:{proxy.port}/dicom-web")
        if how == "cancellation":
            return await call
        with pytest.raises(asyncio.CancelledError):
            await call
        return None

    try:
        result = run_without_threads(main)
    except BaseException:
        proxy.close()
        raise
    only_the_first_batch_arrived(proxy, destination, study, arrived, scratch)
    if how == "cancellation":
        assert result.written == 50
        assert len(result.local_failures) == 10 and {f.reason for f in result.local_failures} == {CANCELLED}
        assert {f.sop_instance_uid for f in result.local_failures} == {c.sop_instance_uid for c in big_study} - \
            set(arrived)


def test_the_blocking_client_sends_nothing_either_after_a_cancellation(orthanc_moving, destination, big_study,
                                                                       scratch):
    """Client.get with forward_to a STOW-RS server, cancelled at the 55th instance: the 5
    held since the first batch are not sent when the sink closes, and say why."""
    destination.clear()
    study = big_study[0].study_uid
    proxy = RecordingProxy("127.0.0.1", destination.http_port)
    arrived: list[str] = []
    stop = Cancellation()

    def progress(state):
        if state.received == 55 and not arrived:
            arrived.extend(held_uids(destination.dicomweb_url, study))
            stop.cancel()

    try:
        result = Client(Settings()).get(node_of(orthanc_moving), study_query(study), progress=progress,
                                        cancellation=stop, forward_to=f"http://127.0.0.1:{proxy.port}/dicom-web")
    except BaseException:
        proxy.close()
        raise
    only_the_first_batch_arrived(proxy, destination, study, arrived, scratch)
    assert result.written == 50
    assert {f.sop_instance_uid for f in result.local_failures} == {c.sop_instance_uid for c in big_study} - set(arrived)
    assert {f.reason for f in result.local_failures} == {CANCELLED}


def test_a_forward_from_dicomweb_to_storescp_and_no_thread(orthanc, corpus, tmp_path):
    study = corpus[0].study_uid
    items = [c for c in corpus if c.study_uid == study]
    storescp = StoreSCP(tmp_path / "storescp")

    async def main():
        return await AsyncClient(Settings(ae_title=OUR_AET)).get(orthanc.dicomweb_url, study_query(study),
                                                                 forward_to=storescp.address, timeout=60)

    with storescp:
        result = run_without_threads(main)
        received = sorted(str(dcmread(p).SOPInstanceUID) for p in storescp.received())
    assert received == sorted(c.sop_instance_uid for c in items)
    assert (result.method, result.status, result.written, result.local_failures) == ("wado-rs", "success",
                                                                                      len(items), [])
