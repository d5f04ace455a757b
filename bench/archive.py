"""The archive against Orthanc: ingest from DCMTK storescu (1 and 4 senders) and C-FIND
latency (DCMTK findscu, whole process, as a user runs it), same files, same disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.corpora import Corpus
from bench.runs import Timing, timed
from pacskit.testing.peers import Orthanc, free_port, peer_env, require

ARCHIVE_AET = "ARCHIVE"
SENDER_AET = "BENCH"


@contextmanager
def pacskit_serve(workdir: Path, *, fsync: bool = True, http_port: int | None = None) -> Any:
    """``pacskit serve`` as a user runs it (SQLite in ``workdir``), the sender known;
    DICOMweb on ``http_port`` if given. Yields the DIMSE port."""
    port = free_port()
    env = {**os.environ, "PACSKIT_NODES__BENCH__AE_TITLE": SENDER_AET,
           "PACSKIT_NODES__BENCH__HOST": "127.0.0.1", "PACSKIT_NODES__BENCH__PORT": str(free_port())}
    args = [str(Path(os.sys.executable).parent / "pacskit"), "--aet", ARCHIVE_AET, "--port", str(port),
            "serve", "--data-dir", str(workdir), *([] if fsync else ["--no-fsync"]),
            *(["--http-port", str(http_port)] if http_port else ["--no-http"])]
    log = (workdir.parent / f"{workdir.name}-serve.log").open("ab")
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    try:
        for _ in range(100):
            if subprocess.run([require("echoscu"), "-aet", SENDER_AET, "-aec", ARCHIVE_AET, "127.0.0.1",
                               str(port)], capture_output=True, env=peer_env(), check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("pacskit serve did not start: "
                               f"{(workdir.parent / f'{workdir.name}-serve.log').read_text()[-500:]}")
        if http_port:
            _wait_for_http(f"http://127.0.0.1:{http_port}/dicom-web/studies?limit=1")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_for_http(url: str) -> None:
    for _ in range(100):
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"pacskit serve does not answer at {url}")


def storescu_args(ae_title: str, port: int, folder: Path) -> list[str]:
    return [require("storescu"), "-aet", SENDER_AET, "-aec", ae_title, "+sd", "+r", "-nh",
            "127.0.0.1", str(port), str(folder)]


def ingest(corpus: Corpus, ae_title: str, port: int, senders: int) -> float:
    """Seconds for ``senders`` storescu processes to send the corpus (split by series)."""
    folders = sorted(p for p in corpus.path.iterdir() if p.is_dir())
    if len(folders) < senders:
        folders = sorted(p for p in corpus.path.rglob("*") if p.is_dir() and any(p.glob("*.dcm")))
    shares = [folders[i::senders] for i in range(senders)]
    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(lambda share: [timed(storescu_args(ae_title, port, f)) for f in share], shares))
    return time.perf_counter() - started


def ingest_runs(corpus: Corpus, root: Path, senders: int) -> list[Timing]:
    """``senders`` storescu into Orthanc and into pacskit serve, fresh each time."""
    folder = root / f"orthanc-{senders}"
    with Orthanc(folder, ae_title="ORTHANC") as orthanc:
        timings = [Timing("Orthanc", corpus, ingest(corpus, orthanc.ae_title, orthanc.port, senders))]
    shutil.rmtree(folder, ignore_errors=True)
    for fsync in (True, False):
        folder = root / f"pacskit-{senders}-{fsync}"
        with pacskit_serve(folder, fsync=fsync) as port:
            label = "pacskit serve" + ("" if fsync else ", no fsync")
            timings.append(Timing(label, corpus, ingest(corpus, ARCHIVE_AET, port, senders)))
        shutil.rmtree(folder, ignore_errors=True)
    return timings


def serve_runs(corpus: Corpus, root: Path, repeat: int) -> list[Timing]:
    """DCMTK getscu retrieving ``corpus`` (one study) by C-GET from Orthanc and from
    pacskit serve, each holding it on disk; best of ``repeat``."""
    timings = []
    with Orthanc(root / "orthanc-serve", ae_title="ORTHANC") as orthanc:
        ingest(corpus, orthanc.ae_title, orthanc.port, 1)
        timings.append(Timing("Orthanc", corpus, _getscu_best(corpus, orthanc.ae_title, orthanc.port,
                                                               root / "served", repeat)))
    with pacskit_serve(root / "pacskit-serve", fsync=False) as port:
        ingest(corpus, ARCHIVE_AET, port, 1)
        timings.append(Timing("pacskit serve", corpus, _getscu_best(corpus, ARCHIVE_AET, port,
                                                                     root / "served", repeat)))
    for folder in ("orthanc-serve", "pacskit-serve", "served"):
        shutil.rmtree(root / folder, ignore_errors=True)
    return timings


def _getscu_best(corpus: Corpus, ae_title: str, port: int, out: Path, repeat: int) -> float:
    args = [require("getscu"), "-aet", SENDER_AET, "-aec", ae_title, "-S", "--max-pdu", "131072",
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={corpus.study_uid}",
            "-od", str(out), "127.0.0.1", str(port)]
    best = float("inf")
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        best = min(best, timed(args))
        received = sum(1 for p in out.rglob("*") if p.is_file())
        if received != corpus.count:
            raise RuntimeError(f"getscu from {ae_title}: {received} of {corpus.count} files")
    return best


def find_latency(corpus: Corpus, root: Path, repeat: int) -> list[tuple[str, float, float, float, float]]:
    """(tool, ms for a study-level C-FIND by PatientID, ms for all studies, ms for QIDO-RS
    studies of one patient, ms for QIDO-RS all studies with limit=100): findscu runs and
    HTTP requests, best of ``repeat``, against Orthanc and pacskit serve holding ``corpus``."""
    from bench.web import qido_times

    patient = next(p.name for p in corpus.path.iterdir() if p.is_dir())
    results = []
    with Orthanc(root / "orthanc-find", ae_title="ORTHANC") as orthanc:
        ingest(corpus, orthanc.ae_title, orthanc.port, 4)
        results.append(("Orthanc", *_find_times(orthanc.ae_title, orthanc.port, patient, repeat),
                        *qido_times(orthanc.dicomweb_url, patient, corpus.count, repeat)))
    http_port = free_port()
    with pacskit_serve(root / "pacskit-find", fsync=False, http_port=http_port) as port:
        ingest(corpus, ARCHIVE_AET, port, 4)
        results.append(("pacskit serve", *_find_times(ARCHIVE_AET, port, patient, repeat),
                        *qido_times(f"http://127.0.0.1:{http_port}/dicom-web", patient, corpus.count, repeat)))
    return results


def _find_times(ae_title: str, port: int, patient: str, repeat: int) -> tuple[float, float]:
    def findscu(*keys: str) -> float:
        args = [require("findscu"), "-aet", SENDER_AET, "-aec", ae_title, "-S",
                "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", *keys, "127.0.0.1", str(port)]
        return min(timed(args) for _ in range(repeat)) * 1000
    return findscu("-k", f"PatientID={patient}"), findscu("-k", "PatientID")
