"""pacskit serve's DICOMweb against Orthanc's DICOMweb plugin: STOW-RS ingest, WADO-RS
study retrieval and QIDO-RS latency, the same files and the same HTTP client for both;
and a study downloaded as a ZIP, pacskit's ``application/zip`` retrieve (docs/web-actions.md)
against Orthanc's ``/studies/{id}/archive``, and with a DICOMDIR against its ``/media``.

The client is pacskit's own (``pacskit.web.client``) for STOW-RS, and httpx with a fresh
connection per request for WADO-RS and QIDO-RS, counting the parts and instances that
come back: a server that answers less than it holds fails the benchmark.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.archive import pacskit_serve
from bench.corpora import Corpus
from bench.runs import Timing
from pacskit import Client, Settings
from pacskit.testing.peers import Orthanc, free_port
from pacskit.web.client import ResponseBody
from pacskit.web.media import MediaType
from pacskit.web.multipart import iter_parts

RETRIEVE_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def web_runs(corpus: Corpus, root: Path, parallel: int
             ) -> tuple[list[Timing], list[Timing], list[Timing], list[Timing]]:
    """(STOW-RS, WADO-RS, ZIP, ZIP with DICOMDIR timings): ``corpus`` POSTed (50 instances
    a request, ``parallel`` requests at a time) into a fresh Orthanc and a fresh pacskit
    serve, then its study retrieved whole from each, and downloaded as a ZIP."""
    stow, wado, zips, media = [], [], [], []
    for tool in ("Orthanc", "pacskit serve"):
        folder = root / f"web-{tool.split()[0].lower()}-{corpus.name}-{parallel}"
        with _server(tool, folder) as url:
            stow.append(Timing(tool, corpus, _stow(url, corpus, parallel)))
            held = _instances_of_study(url, corpus.study_uid)
            if held != corpus.count:
                raise RuntimeError(f"{tool} holds {held} of the {corpus.count} instances STOW-RS sent")
            wado.append(Timing(tool, corpus, _wado(url, corpus)))
            zips.append(Timing(tool, corpus, _zip(tool, url, corpus, dicomdir=False)))
            media.append(Timing(tool, corpus, _zip(tool, url, corpus, dicomdir=True)))
        shutil.rmtree(folder, ignore_errors=True)
    return stow, wado, zips, media


def qido_times(url: str, patient: str, instances: int, repeat: int) -> tuple[float, float]:
    """(ms for the studies of ``patient``, ms for all studies with limit=100), best of
    ``repeat``, each a fresh connection and request as a script would make."""
    def best(params: dict[str, str], expected: int | None) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = httpx.get(f"{url}/studies", params=params,
                                 headers={"Accept": "application/dicom+json"}, timeout=120)
            response.raise_for_status()
            found = len(response.json())
            times.append((time.perf_counter() - started) * 1000)
            if not found or (expected is not None and found != expected):
                raise RuntimeError(f"QIDO-RS {params} at {url} found {found} studies")
        return min(times)
    return best({"PatientID": patient}, None), best({"limit": "100"}, min(100, max(1, instances // 25)))


@contextmanager
def _server(tool: str, folder: Path) -> Iterator[str]:
    """Orthanc, or pacskit serve with DICOMweb, on an empty folder; its DICOMweb root."""
    if tool == "Orthanc":
        with Orthanc(folder, ae_title="ORTHANC") as orthanc:
            yield orthanc.dicomweb_url
        return
    port = free_port()
    with pacskit_serve(folder, http_port=port):
        yield f"http://127.0.0.1:{port}/dicom-web"


def _stow(url: str, corpus: Corpus, parallel: int) -> float:
    started = time.perf_counter()
    result = Client(Settings()).store([corpus.path], url, parallel=parallel)
    elapsed = time.perf_counter() - started
    if result.sent != corpus.count:
        first = result.failures[0].reason if result.failures else "?"
        raise RuntimeError(f"STOW-RS to {url}: {result.sent} of {corpus.count} stored ({first})")
    return elapsed


def _instances_of_study(url: str, study_uid: str) -> int:
    response = httpx.get(f"{url}/studies", params={"StudyInstanceUID": study_uid,
                                                   "includefield": "NumberOfStudyRelatedInstances"},
                         headers={"Accept": "application/dicom+json"}, timeout=60)
    response.raise_for_status()
    found = json.loads(response.content)
    return int(found[0]["00201208"]["Value"][0]) if found else 0


def _wado(url: str, corpus: Corpus) -> float:
    started = time.perf_counter()
    parts = received = 0
    with httpx.stream("GET", f"{url}/studies/{corpus.study_uid}", headers={"Accept": RETRIEVE_ACCEPT},
                      timeout=300) as response:
        response.raise_for_status()
        boundary = MediaType.parse(response.headers["content-type"]).params["boundary"]
        for _, body in iter_parts(ResponseBody(response), boundary):
            parts += 1
            received += len(body)
    elapsed = time.perf_counter() - started
    if parts != corpus.count:
        raise RuntimeError(f"WADO-RS from {url} returned {parts} of {corpus.count} instances")
    return elapsed


def _zip(tool: str, url: str, corpus: Corpus, *, dicomdir: bool) -> float:
    """Seconds to download the study as a ZIP (read to its end, counted and opened)."""
    started = time.perf_counter()
    if tool == "Orthanc":
        rest = url.rstrip("/").removesuffix("/dicom-web")
        [found] = httpx.post(f"{rest}/tools/lookup", content=corpus.study_uid, timeout=60).json()
        target, params = f"{rest}/studies/{found['ID']}/{'media' if dicomdir else 'archive'}", {}
    else:
        target = f"{url}/studies/{corpus.study_uid}"
        params = {"accept": "application/zip", **({"dicomdir": "true"} if dicomdir else {})}
    body = bytearray()
    with httpx.stream("GET", target, params=params, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            body += chunk
    elapsed = time.perf_counter() - started
    with zipfile.ZipFile(io.BytesIO(bytes(body))) as archive:
        held = sum(1 for name in archive.namelist() if name.rsplit("/", 1)[-1] != "DICOMDIR")
    if held != corpus.count:
        raise RuntimeError(f"the ZIP from {tool} holds {held} of the {corpus.count} instances")
    return elapsed
