"""AsyncClient.copy on the event loop (pacskit.aio_copy), from Orthanc by DIMSE and by
DICOMweb into a folder, another Orthanc by DIMSE and by DICOMweb: the CopyResult and the
instances of the blocking Client.copy, no worker thread, a second run that copies
nothing, a dry run, a copy that completes one that stopped, a cancel after which nothing
more is written."""

from __future__ import annotations

import asyncio

import pytest
from no_threads import run_without_threads as on_loop
from pydicom import dcmread

from pacskit import AsyncClient, Client, Settings
from pacskit.query import Query
from pacskit.testing.peers import Orthanc

FIELDS = ("source", "planned", "present", "copied", "failed", "skipped_files", "cancelled", "dry_run")


@pytest.fixture(scope="module")
def destination(tmp_path_factory):
    with Orthanc(tmp_path_factory.mktemp("destination")) as peer:
        yield peer


def origin_of(orthanc, kind: str) -> str:
    return orthanc.address if kind == "dimse" else orthanc.dicomweb_url


def held(destination, into: str, where, study: str) -> set[str]:
    if into == "folder":
        return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in where.rglob("*.dcm")}
    found = Client(Settings()).find(destination.dicomweb_url, Query.build("image", study_uid=study))
    return {str(m.SOPInstanceUID) for m in found}


def summary(result) -> dict:
    return {**{f: getattr(result, f) for f in FIELDS}, "wanted": sorted(result.wanted)}


@pytest.mark.parametrize("into", ["folder", "dimse", "dicomweb"])
@pytest.mark.parametrize("origin", ["dimse", "dicomweb"])
def test_an_async_copy_gives_the_blocking_result_on_the_loop_and_a_second_run_copies_nothing(
        orthanc, destination, corpus, tmp_path, origin, into):
    study = corpus[0].study_uid
    wanted = {c.sop_instance_uid for c in corpus if c.study_uid == study}
    query = Query.build("study", study_uid=study)
    source = origin_of(orthanc, origin)

    def where(name: str):
        return tmp_path / name if into == "folder" else origin_of(destination, into)

    destination.clear()
    blocking = Client(Settings()).copy(source, query, where("sync"))
    blocking_held = held(destination, into, where("sync"), study)
    destination.clear()
    dry = on_loop(lambda: AsyncClient(Settings()).copy(source, query, where("async"), dry_run=True, timeout=60))
    assert held(destination, into, where("async"), study) == set()
    awaited = on_loop(lambda: AsyncClient(Settings()).copy(source, query, where("async"), timeout=60))
    assert summary(awaited) == summary(blocking)
    if into == "folder":
        assert (awaited.destination, blocking.destination) == (str(where("async")), str(where("sync")))
    else:
        assert awaited.destination == blocking.destination
    assert (awaited.planned, awaited.copied, awaited.failed) == (len(wanted), len(wanted), [])
    assert held(destination, into, where("async"), study) == blocking_held == wanted
    assert dry.dry_run and dry.copied == 0 and dry.planned == len(wanted)
    again = on_loop(lambda: AsyncClient(Settings()).copy(source, query, where("async"), timeout=60))
    blocking_again = Client(Settings()).copy(source, query, where("async"))
    assert summary(again) == summary(blocking_again)
    assert (again.copied, again.present, again.wanted) == (0, len(wanted), [])


def test_an_async_copy_completes_one_that_stopped_copying_only_what_is_missing(orthanc, corpus, tmp_path):
    first = corpus[0]
    series = [c for c in corpus if c.series_uid == first.series_uid]
    others = sorted(c.sop_instance_uid for c in corpus if c.study_uid == first.study_uid and c not in series)
    out = tmp_path / "out"
    Client(Settings()).copy(orthanc.address, Query.build("series", study_uid=first.study_uid,
                                                         series_uid=first.series_uid), out).raise_for_status()
    query = Query.build("study", study_uid=first.study_uid)
    dry = on_loop(lambda: AsyncClient(Settings()).copy(orthanc.address, query, out, dry_run=True, timeout=60))
    assert sorted(dry.wanted) == others and dry.present == len(series)
    written: list[int] = []
    result = on_loop(lambda: AsyncClient(Settings()).copy(orthanc.address, query, out, timeout=60,
                                                          progress=lambda state: written.append(state.received)))
    assert (result.planned, result.present, result.copied, result.failed) == (6, len(series), len(others), [])
    assert sorted(result.wanted) == others and written[-1] == len(others)


def test_nothing_is_written_after_the_cancel(orthanc, corpus, tmp_path):
    out = tmp_path / "out"
    at_cancel: list[int] = []

    async def main():
        task = asyncio.current_task()

        def progress(state):
            if state.received == 2 and not at_cancel:
                at_cancel.append(len(list(out.rglob("*.dcm"))))
                task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await AsyncClient(Settings()).copy(orthanc.address, Query.build("study", study_uid=corpus[0].study_uid),
                                               out, progress=progress, timeout=60)

    on_loop(main)
    assert at_cancel == [2]
    assert len(list(out.rglob("*.dcm"))) == 2


def test_a_transient_failure_is_tried_again_on_the_loop(orthanc, corpus, tmp_path):
    """The first two connections to Orthanc are reset: the third attempt copies the study."""
    from proxy import RecordingProxy

    proxy = RecordingProxy("127.0.0.1", orthanc.port, drop_first=2)
    study = corpus[0].study_uid
    try:
        result = on_loop(lambda: AsyncClient(Settings(retry_backoff=0.05)).copy(
            f"dicom://{orthanc.ae_title}@127.0.0.1:{proxy.port}", Query.build("study", study_uid=study),
            tmp_path / "out", retries=2, timeout=60))
    finally:
        proxy.close()
    assert (result.copied, result.failed, proxy.connections >= 3) == (6, [], True)
    assert held(None, "folder", tmp_path / "out", study) == {c.sop_instance_uid for c in corpus
                                                            if c.study_uid == study}
