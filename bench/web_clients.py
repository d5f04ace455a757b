"""pacskit's DICOMweb clients against Orthanc's DICOMweb plugin, in the same run: a study
retrieved whole by WADO-RS into a folder, and QIDO-RS searches, by the blocking
``Client``, by ``AsyncClient`` and by bare httpx (one request, the parts counted and
dropped: the floor a client can reach against this server).

Run against another ``src`` (``PYTHONPATH=/work/main/src``) the same rows measure that
tree's ``AsyncClient`` (a worker thread per call, before issue 15).
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.corpora import Corpus
from bench.runs import Timing
from pacskit import AsyncClient, Client, Settings, StudyQuery
from pacskit.web.client import ResponseBody
from pacskit.web.media import MediaType
from pacskit.web.multipart import iter_parts

RETRIEVE_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
AT_ONCE = 50


def wado_runs(url: str, corpus: Corpus, root: Path, repeat: int) -> list[Timing]:
    """The study of ``corpus`` retrieved whole from ``url``, best of ``repeat``, by each
    client: httpx (parts counted), ``Client.get_study`` and ``AsyncClient.get_study``
    (files written under ``root``)."""
    tools = {"httpx, parts counted": lambda out: _bare_wado(url, corpus),
             "Client.get_study": lambda out: _checked(Client(Settings()).get_study(url, corpus.study_uid, out),
                                                       corpus),
             "AsyncClient.get_study": lambda out: _checked(asyncio.run(
                 AsyncClient(Settings()).get_study(url, corpus.study_uid, out, timeout=600)), corpus)}
    timings = []
    for tool, run in tools.items():
        best = float("inf")
        for attempt in range(repeat):
            out = root / f"wado-{corpus.name}-{len(timings)}-{attempt}"
            started = time.perf_counter()
            run(out)
            best = min(best, time.perf_counter() - started)
            shutil.rmtree(out, ignore_errors=True)
        timings.append(Timing(tool, corpus, best))
    return timings


def qido_rows(url: str, corpus: Corpus, repeat: int) -> list[tuple[str, float, float, float]]:
    """(client, ms for the study of the corpus, ms for its instances, ms for
    :data:`AT_ONCE` study searches at once), best of ``repeat``: ``Client`` (at once:
    that many threads) and ``AsyncClient`` (at once: gathered on one loop)."""
    study = StudyQuery(study_instance_uid=corpus.study_uid)
    sync = Client(Settings())

    def sync_at_once() -> None:
        with ThreadPoolExecutor(AT_ONCE) as pool:
            found = list(pool.map(lambda _: sync.find_studies(url, study), range(AT_ONCE)))
        _expect(all(len(f) == 1 for f in found), "a threaded search missed the study")

    async def async_at_once() -> None:
        client = AsyncClient(Settings())
        found = await asyncio.gather(*(client.find_studies(url, study, timeout=120) for _ in range(AT_ONCE)))
        _expect(all(len(f) == 1 for f in found), "a gathered search missed the study")

    rows = [("Client", _best(repeat, lambda: _expect(len(sync.find_studies(url, study)) == 1, "no study")),
             _best(repeat, lambda: _expect(len(sync.find_instances(url)) >= corpus.count, "instances missing")),
             _best(repeat, sync_at_once))]
    client = AsyncClient(Settings())
    rows.append(("AsyncClient",
                 _best(repeat, lambda: _expect(len(asyncio.run(client.find_studies(url, study))) == 1, "no study")),
                 _best(repeat, lambda: _expect(len(asyncio.run(client.find_instances(url))) >= corpus.count,
                                               "instances missing")),
                 _best(repeat, lambda: asyncio.run(async_at_once()))))
    return rows


def threads_during_a_find(url: str) -> int:
    """How many threads more than before run while ``AsyncClient`` searches ``url``."""
    before = threading.active_count()

    async def search() -> int:
        task = asyncio.ensure_future(AsyncClient(Settings()).find_studies(url))
        await asyncio.sleep(0)
        most = 0
        while not task.done():
            most = max(most, threading.active_count() - before)
            await asyncio.sleep(0.001)
        await task
        return most

    return asyncio.run(search())


def report_qido(url: str, corpus: Corpus, repeat: int) -> None:
    print(f"\nQIDO-RS against Orthanc, {corpus.count} instances held: one study by its UID, every "
          f"instance, {AT_ONCE} study searches at once (ms, best of {repeat})")
    print(f"  {'client':<14}{'study':>10}{'instances':>12}{f'{AT_ONCE} at once':>14}")
    for tool, one, every, many in qido_rows(url, corpus, repeat):
        print(f"  {tool:<14}{one:>10.1f}{every:>12.1f}{many:>14.1f}")
    print(f"  threads started during an AsyncClient find: {threads_during_a_find(url)}")


def _bare_wado(url: str, corpus: Corpus) -> None:
    parts = 0
    with httpx.stream("GET", f"{url}/studies/{corpus.study_uid}", headers={"Accept": RETRIEVE_ACCEPT},
                      timeout=600) as response:
        response.raise_for_status()
        boundary = MediaType.parse(response.headers["content-type"]).params["boundary"]
        for _ in iter_parts(ResponseBody(response), boundary):
            parts += 1
    _expect(parts == corpus.count, f"httpx got {parts} of {corpus.count} instances")


def _checked(result, corpus: Corpus) -> None:  # type: ignore[no-untyped-def]
    _expect(result.written == corpus.count, f"{result.written} of {corpus.count} instances written")


def _best(repeat: int, run) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def _expect(condition: bool, failure: str) -> None:
    if not condition:
        raise RuntimeError(failure)
