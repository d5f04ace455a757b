"""100 study-level C-FINDs at once against one Orthanc: 100 DCMTK ``findscu`` processes
beside the library in one process (threads over :class:`pacskit.Client`, ``asyncio.gather``
over :class:`pacskit.AsyncClient` on its asyncio driver, and ``asyncio.gather`` over the
blocking client in worker threads, as AsyncClient did before). A find that fails, or whose
matches differ from the same query asked alone, is counted, not raised."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.corpora import Corpus, make
from pacskit import AsyncClient, Client, Node, Settings
from pacskit.query import Query
from pacskit.testing.peers import Orthanc, peer_env, require, storescu

FINDS = 100
CLIENT_AET = "BENCHFIND"
PATIENTS = 20
STUDIES = PATIENTS * 2


def corpus(cache: Path) -> Corpus:
    """20 patients of 2 studies, 5 small instances each."""
    return make(cache, "concurrency", instances=STUDIES * 5, series=1, rows=16, patients=PATIENTS,
                studies=STUDIES // PATIENTS)


@dataclass(frozen=True)
class FindRun:
    """How long one tool took for :data:`FINDS` finds at once, best of the repeats, and
    how many of all the repeats' finds failed."""

    tool: str
    seconds: float
    failed: int
    total: int

    @property
    def per_second(self) -> float:
        return FINDS / self.seconds


@dataclass(frozen=True)
class Kind:
    """One kind of find: its name, the query of the i-th of a round, the findscu keys."""

    name: str
    query: Callable[[int], Query]
    keys: Callable[[int], list[str]]


def kinds(patients: list[str]) -> list[Kind]:
    """Studies by PatientID (each find its own patient, in turn) and all studies."""
    return [
        Kind("studies by PatientID", lambda i: Query.build("study", patient_id=patients[i % len(patients)]),
             lambda i: ["-k", f"PatientID={patients[i % len(patients)]}"]),
        Kind("all studies", lambda i: Query.build("study"), lambda i: ["-k", "PatientID"]),
    ]


def find_runs(corpus: Corpus, root: Path, repeat: int) -> list[tuple[str, list[FindRun]]]:
    """For each :class:`Kind`: the runs of each tool against one Orthanc holding ``corpus``."""
    patients = sorted(p.name for p in corpus.path.iterdir() if p.is_dir())
    results = []
    with Orthanc(root / "orthanc-concurrency", ae_title="ORTHANC") as orthanc:
        storescu(orthanc.ae_title, orthanc.host, orthanc.port, [corpus.path])
        node = Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port)
        settings = Settings(ae_title=CLIENT_AET)
        for kind in kinds(patients):
            expected = _expected(settings, node, kind)
            tools: dict[str, Callable[[], int]] = {
                f"DCMTK findscu ×{FINDS}": lambda kind=kind: _findscu_round(orthanc, kind),
                "pacskit library, threads":
                    lambda kind=kind, expected=expected: _threaded_round(settings, node, kind, expected),
                "pacskit AsyncClient, asyncio driver":
                    lambda kind=kind, expected=expected: _gathered_round(settings, node, kind, expected),
                f"asyncio.to_thread(Client.find), {FINDS} workers":
                    lambda kind=kind, expected=expected: _to_thread_round(settings, node, kind, expected, FINDS),
            }
            results.append((kind.name, [_best(tool, run, repeat) for tool, run in tools.items()]))
    return results


def _best(tool: str, run: Callable[[], int], repeat: int) -> FindRun:
    best, failed = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        failed += run()
        best = min(best, time.perf_counter() - started)
    return FindRun(tool, best, failed, FINDS * repeat)


def _findscu_round(orthanc: Orthanc, kind: Kind) -> int:
    """Failures among :data:`FINDS` findscu processes started at once (a non-zero exit)."""
    processes = [
        subprocess.Popen([require("findscu"), "-aet", CLIENT_AET, "-aec", orthanc.ae_title, "-S",
                          "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", *kind.keys(i),
                          orthanc.host, str(orthanc.port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=peer_env())
        for i in range(FINDS)
    ]
    return sum(1 for process in processes if process.wait() != 0)


def _expected(settings: Settings, node: Node, kind: Kind) -> list[set[str]]:
    """The studies each find of a round must bring: those of its query asked alone."""
    client = Client(settings)
    alone = {}
    for i in range(FINDS):
        key = str(kind.query(i).match)
        if key not in alone:
            alone[key] = {m.StudyInstanceUID for m in client.find(node, kind.query(i))}
    return [alone[str(kind.query(i).match)] for i in range(FINDS)]


def _wrong_or_failed(outcomes: list[object], expected: list[set[str]]) -> int:
    return sum(1 for outcome, studies in zip(outcomes, expected, strict=True)
               if isinstance(outcome, BaseException)
               or {m.StudyInstanceUID for m in outcome} != studies)  # type: ignore[attr-defined]


def _threaded_round(settings: Settings, node: Node, kind: Kind, expected: list[set[str]]) -> int:
    client = Client(settings)
    queries = [kind.query(i) for i in range(FINDS)]
    with ThreadPoolExecutor(FINDS) as pool:
        futures = [pool.submit(client.find, node, query) for query in queries]
        outcomes = [future.exception() or future.result() for future in futures]
    return _wrong_or_failed(outcomes, expected)


def _gathered_round(settings: Settings, node: Node, kind: Kind, expected: list[set[str]]) -> int:
    """``asyncio.gather`` over AsyncClient.find (the asyncio driver: no thread)."""
    client = AsyncClient(settings)
    queries = [kind.query(i) for i in range(FINDS)]

    async def everything() -> list[object]:
        return await asyncio.gather(*(client.find(node, q) for q in queries), return_exceptions=True)

    return _wrong_or_failed(asyncio.run(everything()), expected)


def _to_thread_round(settings: Settings, node: Node, kind: Kind, expected: list[set[str]], workers: int) -> int:
    """``asyncio.gather`` over ``asyncio.to_thread(Client.find)`` with ``workers`` threads:
    what AsyncClient did before its asyncio driver."""
    client = Client(settings)
    queries = [kind.query(i) for i in range(FINDS)]

    async def everything() -> list[object]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(workers))
        return await asyncio.gather(*(asyncio.to_thread(client.find, node, q) for q in queries),
                                    return_exceptions=True)

    return _wrong_or_failed(asyncio.run(everything()), expected)


def report(title: str, runs: list[FindRun]) -> None:
    baseline = runs[0]
    print(f"\n{title}")
    width = max(len(r.tool) for r in runs) + 2
    print(f"  {'tool':<{width}}{'seconds':>9}{'finds/s':>10}{'ratio':>8}{'failed':>10}")
    for r in runs:
        print(f"  {r.tool:<{width}}{r.seconds:>9.2f}{r.per_second:>10.0f}"
              f"{r.per_second / baseline.per_second:>8.2f}{f'{r.failed}/{r.total}':>10}")
