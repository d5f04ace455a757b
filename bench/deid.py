"""De-identification's cost: ``pacskit get`` of the same study from the same Orthanc,
plain and with ``--deidentify`` (Basic Profile), as whole command-line runs and through
the library. The target is at most 2× the plain time (docs/deidentification.md)."""

from __future__ import annotations

import time
from pathlib import Path

from bench.corpora import Corpus
from bench.runs import Timing, _empty, pacskit, timed
from pacskit import Client, Node, Settings
from pacskit.testing.peers import Orthanc, peer_env

SECRET = "bench secret"


def deid_runs(corpus: Corpus, orthanc: Orthanc, out: Path) -> list[Timing]:
    """Plain and de-identified retrieves of ``corpus``, each into an emptied folder that
    must then hold the whole corpus."""
    target = out / "deid"
    node = Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port)
    env = {**peer_env(), "PACSKIT_DEIDENTIFY__SECRET": SECRET}
    client = Client(Settings(max_pdu=131072, deidentify={"secret": SECRET}))
    get = ("--max-pdu", 131072, "get", orthanc.address, "--study-uid", corpus.study_uid, "-o", target)
    runs = {
        "pacskit get": lambda: timed(pacskit(*get), env=env),
        "pacskit get --deidentify": lambda: timed(pacskit(*get, "--deidentify"), env=env),
        "library get": lambda: _library(client, node, corpus, target, False),
        "library get, deidentify": lambda: _library(client, node, corpus, target, True),
    }
    timings = []
    for tool, run in runs.items():
        _empty(target)
        timings.append(Timing(tool, corpus, run()))
        received = sum(1 for p in target.rglob("*") if p.is_file())
        if received != corpus.count:
            raise RuntimeError(f"{tool}: {received} of {corpus.count} files retrieved")
    return timings


def _library(client: Client, node: Node, corpus: Corpus, target: Path, deidentify: bool) -> float:
    started = time.perf_counter()
    client.get_study(node, corpus.study_uid, target, deidentify=deidentify).raise_for_status()
    return time.perf_counter() - started
