"""AsyncClient with a DICOMweb node, on httpx.AsyncClient and the event loop (no thread per
call), against Orthanc's DICOMweb plugin and `pacskit serve`: the same answers and files
as the blocking Client, many calls at once, a timeout and a cancellation that stop the
request where it is, retries on 503 but not on 400 (PS3.18 10.4, 10.5, 10.6)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from flaky_http import FlakyFront
from proxy import RecordingProxy
from pydicom import dcmread
from served import served_archive, web_url

from pacskit import AsyncClient, Client, Settings
from pacskit.errors import AccessDenied, HttpFailure, TlsFailure
from pacskit.level_queries import InstanceQuery, PatientQuery, SeriesQuery, StudyQuery
from pacskit.query import Query
from pacskit.settings import NodeConfig, TlsSettings
from pacskit.testing.certificates import make_certificates
from pacskit.testing.peers import Orthanc

TYPED = {
    "patients": (PatientQuery(), "patient_id", "patient_id"),
    "studies": (StudyQuery(), "study_instance_uid", "study_uid"),
    "series": (SeriesQuery(), "series_instance_uid", "series_uid"),
    "instances": (InstanceQuery(), "sop_instance_uid", "sop_instance_uid"),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory, corpus):
    """`pacskit serve` holding the corpus."""
    with served_archive(tmp_path_factory.mktemp("aioweb"), [c.path for c in corpus]) as archive:
        yield archive


@pytest.fixture(scope="module", params=["orthanc", "pacskit"])
def url(request, orthanc, served):
    """The DICOMweb root of a server holding the corpus."""
    return orthanc.dicomweb_url if request.param == "orthanc" else web_url(served)


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.mark.parametrize("level", list(TYPED))
def test_typed_finds_answer_what_the_blocking_client_answers(url, corpus, level):
    query, key, corpus_key = TYPED[level]
    method = f"find_{level}"
    blocking = getattr(Client(Settings()), method)(url, query)
    awaited = run(getattr(AsyncClient(Settings()), method)(url, query, timeout=30))
    assert blocking, "the blocking client found nothing"
    assert [r.model_dump() for r in awaited] == [r.model_dump() for r in blocking]
    assert sorted(getattr(r, key) for r in awaited) == sorted({getattr(c, corpus_key) for c in corpus})
    assert all(r.patient_name is None for r in awaited if hasattr(r, "patient_name"))


def test_find_with_limit_and_iter_find_give_the_blocking_answers(url, corpus):
    limited = Query.build("series", limit=2)
    series = run(AsyncClient(Settings()).find(url, limited, timeout=30))
    assert len(series) == 2
    assert series.check is not None and series.check.answers >= 2
    query = Query.build("image", study_uid=corpus[0].study_uid)
    blocking = [m.to_json_dict() for m in Client(Settings()).find(url, query)]

    async def each() -> list[dict]:
        async with AsyncClient(Settings()).iter_find(url, query, timeout=30) as matches:
            return [m.to_json_dict() async for m in matches]

    assert run(each()) == blocking and len(blocking) == 6
    assert all("00100010" not in m for m in blocking)


def test_no_thread_runs_during_a_find_a_retrieve_and_a_store(orthanc, corpus, tmp_path):
    url = orthanc.dicomweb_url
    first = corpus[0]
    before = set(threading.enumerate())

    async def main() -> list[set[threading.Thread]]:
        client = AsyncClient(Settings())
        seen = []
        async with client.iter_results(url, InstanceQuery(study_instance_uid=first.study_uid), timeout=30) as results:
            async for _ in results:
                seen.append(set(threading.enumerate()))
        await client.get_study(url, first.study_uid, tmp_path / "out", timeout=30,
                               progress=lambda state: seen.append(set(threading.enumerate())))
        await client.store([first.path], url, timeout=30,
                           progress=lambda state: seen.append(set(threading.enumerate())))
        return seen

    seen = run(main())
    assert len(seen) >= 6 + 6 + 1
    assert all(threads == before for threads in seen), [t.name for t in set.union(*seen) - before]


def test_fifty_finds_gathered_on_one_loop_all_succeed(url, corpus):
    patients = sorted({c.patient_id for c in corpus})

    async def main():
        client = AsyncClient(Settings())
        alone = {p: await client.find_studies(url, StudyQuery(patient_id=p)) for p in patients}
        found = await asyncio.gather(*(client.find_studies(url, StudyQuery(patient_id=patients[i % len(patients)]),
                                                           timeout=60)
                                       for i in range(50)), return_exceptions=True)
        return alone, found

    alone, found = run(main())
    assert [f for f in found if isinstance(f, BaseException)] == []
    for i, studies in enumerate(found):
        expected = alone[patients[i % len(patients)]]
        assert len(expected) == 2
        assert sorted(s.study_instance_uid for s in studies) == sorted(s.study_instance_uid for s in expected)


def test_a_retrieve_writes_the_files_the_blocking_client_writes(url, corpus, tmp_path):
    first = corpus[0]
    blocking = Client(Settings()).get_study(url, first.study_uid, tmp_path / "sync").raise_for_status()
    awaited = run(AsyncClient(Settings()).get_study(url, first.study_uid, tmp_path / "async",
                                                    timeout=60)).raise_for_status()
    assert awaited.method == "wado-rs"
    assert (awaited.written, awaited.completed, awaited.failed) == (blocking.written, blocking.completed, 0) == (6, 6, 0)
    for path in blocking.files:
        twin = tmp_path / "async" / path.relative_to(tmp_path / "sync")
        assert twin.read_bytes() == path.read_bytes()
        assert dcmread(twin).PatientName == ""
    again = run(AsyncClient(Settings()).get_study(url, first.study_uid, tmp_path / "async", timeout=60))
    assert (again.written, again.skipped) == (0, 6)


@pytest.mark.parametrize("wado_uri", [False, True], ids=["WADO-RS", "WADO-URI"])
@pytest.mark.parametrize("level", ["patient", "series"])
def test_the_plan_and_its_requests_are_the_blocking_clients(url, corpus, wado_uri, level):
    first = corpus[0]
    query = (Query.build("patient", patient_id=first.patient_id) if level == "patient"
             else Query.build("series", study_uid=first.study_uid, modality=first.modality))
    blocking = Client(Settings()).get(url, query, wado_uri=wado_uri).raise_for_status()
    awaited = run(AsyncClient(Settings()).get(url, query, wado_uri=wado_uri, timeout=60)).raise_for_status()
    expected = {i.sop_instance_uid for i in corpus if i.patient_id == first.patient_id} if level == "patient" else {
        i.sop_instance_uid for i in corpus if i.study_uid == first.study_uid and i.modality == first.modality}
    assert {str(d.SOPInstanceUID) for d in awaited.instances} == expected
    assert (awaited.method, awaited.requests, awaited.completed, awaited.failed) == (
        blocking.method, blocking.requests, blocking.completed, 0)
    assert awaited.requests == (len(expected) if wado_uri else len(
        {(i.study_uid, i.series_uid if level == "series" else "") for i in corpus if i.sop_instance_uid in expected}))
    assert awaited.check is not None and blocking.check is not None
    assert (awaited.check.level, awaited.check.answers) == (blocking.check.level, blocking.check.answers)


@pytest.mark.parametrize("wado_uri", [False, True], ids=["WADO-RS", "WADO-URI"])
def test_a_series_and_some_instances_to_memory(url, corpus, wado_uri):
    first = corpus[0]
    client = AsyncClient(Settings())
    series = run(client.get_series(url, first.study_uid, first.series_uid, wado_uri=wado_uri,
                                   timeout=60)).raise_for_status()
    assert {str(d.SOPInstanceUID) for d in series.instances} == {
        i.sop_instance_uid for i in corpus if i.series_uid == first.series_uid}
    assert all(d.PatientName == "" for d in series.instances)
    one = run(client.get_instances(url, first.study_uid, first.series_uid, [first.sop_instance_uid],
                                   wado_uri=wado_uri, timeout=60)).raise_for_status()
    assert [str(d.SOPInstanceUID) for d in one.instances] == [first.sop_instance_uid]


def test_a_cancelled_retrieve_writes_nothing_after_the_cancel(orthanc, corpus, tmp_path):
    proxy = RecordingProxy("127.0.0.1", orthanc.http_port, delay=0.05, chunk_size=1024)
    out = tmp_path / "out"
    at_cancel: list[int] = []

    async def main() -> None:
        first = asyncio.Event()
        task = asyncio.create_task(AsyncClient(Settings()).get_study(
            f"http://127.0.0.1:{proxy.port}/dicom-web", corpus[0].study_uid, out, timeout=120,
            progress=lambda state: first.set() if state.received else None))
        await asyncio.wait_for(first.wait(), 60)
        task.cancel()
        at_cancel.append(len(list(out.rglob("*.dcm"))))
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        run(main())
        assert proxy.wait_idle(10), "the connection was not closed"
    finally:
        proxy.close()
    assert 1 <= at_cancel[0] < 6, "the cancel came after the whole study"
    assert len(list(out.rglob("*.dcm"))) == at_cancel[0], "a file was written after the cancel"
    assert not [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".dcm")], "a partial file"


def test_a_timeout_against_a_slow_server_stops_within_a_second_of_it(orthanc, corpus, tmp_path):
    proxy = RecordingProxy("127.0.0.1", orthanc.http_port, delay=0.1, chunk_size=128)
    slow = f"http://127.0.0.1:{proxy.port}/dicom-web"

    async def timed(call) -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await call
        return time.monotonic() - started

    try:
        client = AsyncClient(Settings())
        retrieving = run(timed(client.get_study(slow, corpus[0].study_uid, tmp_path / "out", timeout=1.0)))
        finding = run(timed(client.find_instances(slow, timeout=1.0)))
    finally:
        proxy.close()
    assert 1.0 <= retrieving < 2.0
    assert 1.0 <= finding < 2.0


def test_a_503_is_retried_and_succeeds_a_400_is_not(orthanc, corpus):
    client = AsyncClient(Settings())
    expected = sorted(s.study_instance_uid for s in Client(Settings()).find_studies(orthanc.dicomweb_url))
    with FlakyFront(orthanc.dicomweb_url, status=503, fail_first=1) as flaky:
        studies = run(client.find_studies(flaky.url, retries=2, retry_backoff=0.05, timeout=30))
        assert sorted(s.study_instance_uid for s in studies) == expected
        assert len(flaky.requests) == 2
    with FlakyFront(orthanc.dicomweb_url, status=503, fail_first=1) as flaky:
        got = run(client.get_study(flaky.url, corpus[0].study_uid, retries=2, retry_backoff=0.05, timeout=30))
        assert got.raise_for_status().completed == 6
    with FlakyFront(orthanc.dicomweb_url, status=400, fail_first=10) as refusing:
        with pytest.raises(HttpFailure, match="HTTP 400"):
            run(client.find_studies(refusing.url, retries=3, retry_backoff=0.05, timeout=30))
        assert len(refusing.requests) == 1


def test_a_reset_connection_is_retried(orthanc):
    proxy = RecordingProxy("127.0.0.1", orthanc.http_port, drop_first=1)
    try:
        studies = run(AsyncClient(Settings()).find_studies(f"http://127.0.0.1:{proxy.port}/dicom-web", retries=2,
                                                           retry_backoff=0.05, timeout=30))
    finally:
        proxy.close()
    assert len(studies) == 4 and proxy.connections == 2


def test_stow_rs_in_batches_then_found_again(tmp_path, corpus, corpus_dir):
    with Orthanc(tmp_path / "orthanc") as fresh:
        seen = []
        stored = run(AsyncClient(Settings()).store([corpus_dir], fresh.dicomweb_url, parallel=2, timeout=60,
                                                   progress=seen.append)).raise_for_status()
        assert (stored.sent, stored.failed) == (len(corpus), 0)
        assert [p.done for p in seen] == list(range(1, len(corpus) + 1))
        assert fresh.instance_count() == len(corpus)
    with served_archive(tmp_path / "serve", []) as archive:
        stored = run(AsyncClient(Settings()).store([corpus_dir], web_url(archive), timeout=60)).raise_for_status()
        assert stored.sent == len(corpus)
        found = Client(Settings()).find_instances(web_url(archive))
        assert sorted(i.sop_instance_uid for i in found) == sorted(c.sop_instance_uid for c in corpus)


def test_credentials_of_a_named_node(tmp_path, corpus):
    with served_archive(tmp_path, [c.path for c in corpus], web={"users": {"alice": "s3cret"}}) as archive:
        nodes = {"web": NodeConfig(dicomweb_url=web_url(archive), username="alice", password="s3cret")}
        found = run(AsyncClient(Settings(nodes=nodes)).find_series("web", timeout=30))
        assert len(found) == len({c.series_uid for c in corpus})
        with pytest.raises(AccessDenied, match="HTTP 401"):
            run(AsyncClient(Settings()).find_series(web_url(archive), timeout=30))


def test_https_with_a_ca_bundle_and_insecure(tmp_path, corpus):
    pki = make_certificates(tmp_path / "pki")
    tls = TlsSettings(certificate=pki.server.certificate, key=pki.server.key, ca=pki.ca, https=True)
    with served_archive(tmp_path, [c.path for c in corpus], tls=tls) as archive:
        https = f"https://127.0.0.1:{archive.settings.web.port}/dicom-web"
        trusted = run(AsyncClient(Settings(tls=TlsSettings(ca=pki.ca))).find_studies(https, timeout=30))
        assert len(trusted) == 4
        with pytest.raises(TlsFailure, match="certificate"):
            run(AsyncClient(Settings(tls=TlsSettings(ca=pki.untrusted_ca))).find_studies(https, timeout=30))
        insecure = Settings(tls=TlsSettings(ca=pki.untrusted_ca, insecure=True))
        assert len(run(AsyncClient(insecure).find_studies(https, timeout=30))) == 4


def test_a_capped_search_is_read_page_after_page(tmp_path, corpus):
    with served_archive(tmp_path, [c.path for c in corpus], web={"search_limit": 5}) as archive:
        url = web_url(archive)
        one_page = httpx.get(f"{url}/instances")
        assert len(one_page.json()) == 5 and "additional results" in one_page.headers["warning"].lower()
        client = AsyncClient(Settings())
        instances = run(client.find_instances(url, timeout=30))
        assert sorted(i.sop_instance_uid for i in instances) == sorted(c.sop_instance_uid for c in corpus)
        assert len(run(client.find(url, Query.build("image", limit=7), timeout=30))) == 7


def test_a_study_search_by_modality_gives_the_blocking_answers(url, corpus):
    modality = corpus[0].modality
    query = StudyQuery(modality=modality)
    blocking = Client(Settings()).find_studies(url, query)
    awaited = run(AsyncClient(Settings()).find_studies(url, query, timeout=30))
    assert [s.model_dump() for s in awaited] == [s.model_dump() for s in blocking]
    assert sorted(s.study_instance_uid for s in awaited) == sorted({c.study_uid for c in corpus
                                                                    if c.modality == modality})
