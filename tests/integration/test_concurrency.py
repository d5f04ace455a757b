"""64 associations at once from one process, round after round, against ``pacskit serve``
(its own process) and Orthanc holding the same corpus: with threads over
:class:`pacskit.Client` and with ``asyncio.gather`` over :class:`pacskit.AsyncClient`.

Every find must succeed and bring exactly what the same query brings when it is asked
alone; the queries of a round differ (all studies, the studies of one patient, of the
other) so that an answer delivered to the wrong caller is seen.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydicom import Dataset
from serve_process import CLIENT_AET, ServeProcess

from pacskit import AsyncClient, Client, Node, Settings
from pacskit.query import Query

ASSOCIATIONS = 64
# A round of 64 finds takes 0.7-0.8 s against pacskit serve and 0.4 s against Orthanc on
# the 2-core machine; 25 rounds of each of the four kinds (100 rounds, 6400 finds) keep the
# module near 65 s, where 100 of each would take 4 minutes. A hang shows as a timeout
# after TIMEOUT seconds, not the default 30-60 s.
ROUNDS = 25
TIMEOUT = 10.0

Outcome = list[Dataset] | BaseException
Round = Callable[[Node, list[Query]], list[Outcome]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path):
    with ServeProcess(tmp_path_factory.mktemp("serve") / "data") as server:
        server.load([corpus_dir])
        yield server


@pytest.fixture(params=["serve", "orthanc"])
def peer(request: pytest.FixtureRequest) -> Node:
    if request.param == "serve":
        return request.getfixturevalue("served").node
    orthanc = request.getfixturevalue("orthanc")
    return Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port)


def settings() -> Settings:
    return Settings(ae_title=CLIENT_AET, acse_timeout=TIMEOUT, dimse_timeout=TIMEOUT,
                    network_timeout=TIMEOUT, connect_timeout=TIMEOUT)


def query_kinds(corpus: list) -> list[Query]:
    """All studies, the studies of one patient, of the other."""
    first, second = sorted({c.patient_id for c in corpus})
    return [Query.build("study"), Query.build("study", patient_id=first),
            Query.build("study", patient_id=second)]


def answer(matches: list[Dataset]) -> list[str]:
    """A find's matches, comparable: each as its DICOM JSON, in a fixed order."""
    return sorted(json.dumps(match.to_json_dict(), sort_keys=True) for match in matches)


def threaded_round(node: Node, queries: list[Query]) -> list[Outcome]:
    client = Client(settings())
    with ThreadPoolExecutor(len(queries)) as pool:
        futures = [pool.submit(client.find, node, query) for query in queries]
        return [future.exception() or future.result() for future in futures]


def gathered_round(node: Node, queries: list[Query]) -> list[Outcome]:
    client = AsyncClient(settings())

    async def everything() -> list[Outcome]:
        # AsyncClient waits on worker threads; asyncio's default pool has min(32, cores + 4)
        # of them, which would let only 6 of the 64 associations run at once here.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(len(queries)))
        return await asyncio.gather(*(client.find(node, query) for query in queries),
                                    return_exceptions=True)

    return asyncio.run(everything())


def failure_summary(outcomes: list[Outcome]) -> str:
    """The failures of a round, counted by message (ports left out, so that alike ones merge)."""
    kinds = Counter(re.sub(r":\d+\b", ":PORT", f"{type(o).__name__}: {o}")
                    for o in outcomes if isinstance(o, BaseException))
    return "; ".join(f"{count} × {kind}" for kind, count in kinds.most_common())


@pytest.mark.parametrize("run_round", [threaded_round, gathered_round], ids=["threads", "asyncio"])
def test_64_concurrent_finds_all_succeed_with_the_right_answers(peer: Node, corpus: list, run_round: Round):
    kinds = query_kinds(corpus)
    alone = Client(settings())
    expected = [answer(alone.find(peer, query)) for query in kinds]
    for query, matches in zip(kinds, expected, strict=True):
        studies = {json.loads(m)["0020000D"]["Value"][0] for m in matches}
        patient = query.match.get("PatientID")
        assert studies == {c.study_uid for c in corpus if patient in (None, c.patient_id)}
    queries = [kinds[i % len(kinds)] for i in range(ASSOCIATIONS)]
    for number in range(1, ROUNDS + 1):
        outcomes = run_round(peer, queries)
        failed = failure_summary(outcomes)
        wrong = sum(1 for i, outcome in enumerate(outcomes)
                    if not isinstance(outcome, BaseException) and answer(outcome) != expected[i % len(kinds)])
        assert not failed and not wrong, (
            f"round {number} of {ROUNDS}: {sum(isinstance(o, BaseException) for o in outcomes)} of "
            f"{ASSOCIATIONS} finds failed, {wrong} answered wrongly; {failed}")
