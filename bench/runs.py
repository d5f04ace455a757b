"""One timed run of each tool, each against a freshly emptied receiver."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.corpora import Corpus
from pacskit import AsyncClient, Client, Node, Settings
from pacskit.client import study_query
from pacskit.testing.peers import Orthanc, StoreSCP, free_port, peer_env, require


@dataclass(frozen=True)
class Timing:
    """How long one tool took to move one corpus."""

    tool: str
    corpus: Corpus
    seconds: float

    @property
    def per_second(self) -> float:
        return self.corpus.count / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.corpus.bytes / 1e6 / self.seconds


def timed(args: list[str], *, env: dict[str, str] | None = None) -> float:
    """Wall time of a command, which must succeed."""
    started = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, env=env or peer_env(), check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed ({result.returncode}): "
                           f"{(result.stderr or result.stdout).strip()[-800:]}")
    return elapsed


CONSOLE_SCRIPT = Path(sys.executable).with_name("pacskit")


def pacskit(*args: object) -> list[str]:
    """The ``pacskit`` command as a user runs it: the console script beside this
    interpreter (``python -m pacskit`` where there is none)."""
    command = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.is_file() else [sys.executable, "-m", "pacskit"]
    return [*command, *map(str, args)]


def compile_bytecode() -> None:
    """Compile pacskit's modules as ``pip install`` does, so that a command's start-up is
    measured as an installed pacskit's: an editable install under
    ``PYTHONDONTWRITEBYTECODE`` otherwise compiles every module it imports at each start
    (0.1 s and more)."""
    import compileall

    import pacskit

    compileall.compile_dir(Path(pacskit.__file__).parent, quiet=1)


def store_runs(corpus: Corpus, scp: StoreSCP) -> list[Timing]:
    """DCMTK storescu and pacskit store, one association each, into the same storescp."""
    runs = {
        "DCMTK storescu": [require("storescu"), "-aec", scp.ae_title, "+sd", "+r", "-nh",
                           "--max-pdu", "131072", scp.host, str(scp.port), str(corpus.path)],
        "pacskit store": pacskit("--max-pdu", 131072, "store", corpus.path, "--to", scp.address),
        "pacskit store -j 2": pacskit("--max-pdu", 131072, "store", corpus.path, "--to",
                                      scp.address, "--parallel", 2),
    }
    node = Node(ae_title=scp.ae_title, host=scp.host, port=scp.port)
    settings = Settings(max_pdu=131072)
    calls: dict[str, Callable[[], object]] = {
        "pacskit AsyncClient (asyncio driver)": lambda: asyncio.run(
            AsyncClient(settings).store([corpus.path], node)).raise_for_status(),
        "pacskit AsyncClient -j 2": lambda: asyncio.run(
            AsyncClient(settings).store([corpus.path], node, parallel=2)).raise_for_status(),
    }
    return timed_stores(corpus, scp, runs, Client(settings), node, calls)


def timed_stores(corpus: Corpus, scp: StoreSCP, runs: dict[str, list[str]], client: Client,
                 node: Node, calls: dict[str, Callable[[], object]] | None = None) -> list[Timing]:
    """Each command of ``runs``, then ``client`` storing to ``node`` ("pacskit library"),
    then each of ``calls`` in this process, into ``scp`` emptied before each; each must
    deliver the whole corpus."""
    timings = []
    library = {"pacskit library": lambda: client.store([corpus.path], node).raise_for_status(), **(calls or {})}
    for tool, args in [*runs.items(), *library.items()]:
        _empty(scp.output_dir)
        if callable(args):
            started = time.perf_counter()
            args()
            timings.append(Timing(tool, corpus, time.perf_counter() - started))
        else:
            timings.append(Timing(tool, corpus, timed(args)))
        received = sum(1 for p in scp.output_dir.rglob("*") if p.is_file())
        if received != corpus.count:
            raise RuntimeError(f"{tool}: storescp received {received} of {corpus.count} files")
    return timings


def get_runs(corpus: Corpus, orthanc: Orthanc, out: Path, *, big: bool = False) -> list[Timing]:
    """DCMTK getscu, pacskit get (C-GET) and pacskit copy (a C-FIND plan, then C-GET per
    series), the same study from the same Orthanc into an empty folder; ``big``: getscu,
    pacskit get and the library only."""
    target = out / "get"
    node = Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port)
    client = Client(Settings(max_pdu=131072))
    runs: dict[str, list[str] | Callable[[], object] | None] = {
        "DCMTK getscu": [require("getscu"), "-aec", orthanc.ae_title, "-S", "--max-pdu", "131072",
                         "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={corpus.study_uid}",
                         "-od", str(target), orthanc.host, str(orthanc.port)],
        "pacskit get": pacskit("--max-pdu", 131072, "get", orthanc.address, "--study-uid",
                               corpus.study_uid, "-o", target),
        "pacskit copy": pacskit("--max-pdu", 131072, "copy", orthanc.address, target, "--study-uid",
                                corpus.study_uid),
        "pacskit library": None,
        "pacskit AsyncClient (asyncio driver)": lambda: asyncio.run(
            AsyncClient(client.settings).get_study(node, corpus.study_uid, target)).raise_for_status(),
        "pacskit library copy": lambda: client.copy(node, study_query(corpus.study_uid), target).raise_for_status(),
    }
    if big:
        runs = {tool: runs[tool] for tool in ("DCMTK getscu", "pacskit get", "pacskit library")}
    return _retrieve_runs(runs, corpus, target,
                          lambda: client.get_study(node, corpus.study_uid, target).raise_for_status())


MOVESCU_AET = "BENCHMOVESCU"
PACSKIT_AET = "BENCHPACSKIT"


def move_runs(corpus: Corpus, orthanc: Orthanc, out: Path) -> list[Timing]:
    """DCMTK movescu and pacskit get --method move, each asking Orthanc to C-MOVE the same
    study to the storage SCP it runs itself for the duration (``orthanc`` must know both
    AE titles: :func:`register_move_destinations`)."""
    target = out / "move"
    movescu_port, pacskit_port = orthanc.modalities[MOVESCU_AET][2], orthanc.modalities[PACSKIT_AET][2]
    node = Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port)
    client = Client(Settings(ae_title=PACSKIT_AET, port=pacskit_port, max_pdu=131072))
    runs: dict[str, list[str] | Callable[[], object] | None] = {
        "DCMTK movescu": [require("movescu"), "-aet", MOVESCU_AET, "-aec", orthanc.ae_title,
                          "-aem", MOVESCU_AET, "--port", str(movescu_port), "-S", "--max-pdu", "131072",
                          "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={corpus.study_uid}",
                          "-od", str(target), orthanc.host, str(orthanc.port)],
        "pacskit get --method move": pacskit("--aet", PACSKIT_AET, "--port", pacskit_port, "--max-pdu", 131072,
                                             "get", orthanc.address, "--study-uid", corpus.study_uid,
                                             "--method", "move", "-o", target),
        "pacskit library": None,
        "pacskit AsyncClient (asyncio driver)": lambda: asyncio.run(AsyncClient(client.settings).get_study(
            node, corpus.study_uid, target, method="move")).raise_for_status(),
        "pacskit AsyncClient in a worker thread (as before)": lambda: asyncio.run(asyncio.to_thread(
            client.get_study, node, corpus.study_uid, target, method="move")).raise_for_status(),
    }
    return _retrieve_runs(runs, corpus, target,
                          lambda: client.get_study(node, corpus.study_uid, target, method="move")
                          .raise_for_status())


def third_party_move_runs(corpus: Corpus, orthanc: Orthanc, scp: StoreSCP) -> list[Timing]:
    """DCMTK movescu, the library's Client and AsyncClient, each asking Orthanc to C-MOVE
    the same study to the same DCMTK storescp (``orthanc`` must know it as ``scp.ae_title``)."""
    node = Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port)
    settings = Settings(max_pdu=131072)
    client = Client(settings)
    runs: dict[str, list[str] | Callable[[], object] | None] = {
        "DCMTK movescu": [require("movescu"), "-aec", orthanc.ae_title, "-aem", scp.ae_title, "-S",
                          "--max-pdu", "131072", "-k", "QueryRetrieveLevel=STUDY",
                          "-k", f"StudyInstanceUID={corpus.study_uid}", orthanc.host, str(orthanc.port)],
        "pacskit library": None,
        "pacskit AsyncClient (asyncio driver)": lambda: asyncio.run(
            AsyncClient(settings).move_study(node, corpus.study_uid, scp.ae_title)).raise_for_status(),
    }
    return _retrieve_runs(runs, corpus, scp.output_dir,
                          lambda: client.move_study(node, corpus.study_uid, scp.ae_title).raise_for_status())


def _retrieve_runs(runs: dict[str, list[str] | Callable[[], object] | None], corpus: Corpus, target: Path,
                   library: Callable[[], object]) -> list[Timing]:
    """Each command of ``runs`` (None: ``library``; a callable: that call in this
    process), into an emptied ``target`` that must then hold the whole corpus."""
    timings = []
    for tool, args in runs.items():
        _empty(target)
        if args is None or callable(args):
            call = library if args is None else args
            started = time.perf_counter()
            call()
            timings.append(Timing(tool, corpus, time.perf_counter() - started))
        else:
            timings.append(Timing(tool, corpus, timed(args)))
        received = sum(1 for p in target.rglob("*") if p.is_file())
        if received != corpus.count:
            raise RuntimeError(f"{tool}: {received} of {corpus.count} files retrieved")
    return timings


def register_move_destinations(orthanc: Orthanc) -> None:
    """Tell ``orthanc`` where movescu's and pacskit's storage SCPs listen."""
    for ae_title in (MOVESCU_AET, PACSKIT_AET):
        orthanc.add_modality(ae_title, ae_title, "127.0.0.1", free_port())


def _empty(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
