"""pacskit side by side with DCMTK, on loopback, every peer with ``TCP_NODELAY=1``.

    python -m bench [--small 2000] [--large 100] [--repeat 3]
                    [--only store|get|move|archive|web|webclient|page|concurrency|worklist|tls|deid|startup|big]

- store: DCMTK ``storescu`` vs ``pacskit store`` (and ``--parallel 2``), the library's
  ``Client`` and ``AsyncClient`` (and ``parallel=2``) into the same DCMTK ``storescp``;
- move: DCMTK ``movescu`` vs the library's ``Client`` and ``AsyncClient`` asking Orthanc
  to C-MOVE the same study to the same DCMTK ``storescp`` (a third party);
- get: DCMTK ``getscu`` vs ``pacskit get`` (C-GET) and ``pacskit copy ORTHANC FOLDER`` of
  the same study from the same Orthanc, then DCMTK ``movescu --port`` vs ``pacskit get --method move`` (C-MOVE to a storage SCP
  each runs itself);
- archive: DCMTK ``storescu`` into Orthanc vs into ``pacskit serve`` (1 and 4 senders,
  with and without fsync), DCMTK ``getscu`` from each, and ``findscu`` and QIDO-RS
  latency against both holding ``--find-instances`` instances (by PatientID, and all
  studies);
- web: STOW-RS ingest (1 and 4 parallel requests) and WADO-RS retrieval of a whole study,
  Orthanc's DICOMweb plugin vs ``pacskit serve``, the same client for both; and
  (``--only webclient`` alone) pacskit's clients against Orthanc's DICOMweb: a study by
  WADO-RS into a folder and QIDO-RS latency, ``Client`` vs ``AsyncClient`` beside bare
  httpx;
- page: the web page in headless Chromium — the first page of a 10,000-study list, the
  first 512×512 image, scrolling — beside the same resources fetched from Orthanc's
  DICOMweb by the same browser;
- concurrency: 100 study-level C-FINDs at once against one Orthanc (by PatientID, and all
  studies): 100 DCMTK ``findscu`` processes vs the library in one process, threads,
  ``asyncio.gather`` over AsyncClient (the asyncio driver) and over ``asyncio.to_thread``
  (as AsyncClient did before); finds that fail or bring the wrong matches are counted;
- worklist: 10,000 Modality Worklist items in ``pacskit serve`` and in DCMTK ``wlmscpfs``,
  a query by date and modality: median latency on an open association and of a whole
  ``findscu -W`` process;
- tls: DCMTK ``storescu +tls`` vs ``pacskit store --tls`` into the same DCMTK ``storescp
  +tls`` (BCP 195 non-downgrading profile, client certificates required).
- startup: whole processes that do almost nothing (``--version``, ``--help``, ``echo``,
  ``find`` and ``get`` of one instance), pacskit beside DCMTK's tools and ``python -c pass``;
- big (only with ``--only big``: several minutes): a study of about 1 GB (``--big``
  instances of 512×512, 2,000 by default, generated once under ``--cache``), C-STORE into
  DCMTK storescp and C-GET from Orthanc, pacskit's commands and library beside DCMTK, where
  the command's start-up is amortised;
- deid: ``pacskit get`` of the ``--small`` study from Orthanc, plain vs ``--deidentify``
  (PS3.15 Basic Profile), as commands and through the library.

Each is a whole command-line run of the console script, process start included (Python's
imports, 0.3 s or more for pacskit; the modules' bytecode is compiled first, as ``pip
install`` leaves it), the best of ``--repeat`` runs; "pacskit library" is the same work
through the Python API in the benchmark's own process. Received files are written to a
tmpfs (``--scratch``, default /dev/shm) so that disk noise does not drown the protocol. Corpora: ``--small`` CT instances of 64×64 (about 8 KB) and ``--large`` CT
instances of 512×512 (about 512 KB), generated once under ``--cache``. Ratios are
pacskit's throughput over DCMTK's in the same run; absolute numbers vary by machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench import archive, concurrency, deid, page, startup, tls, web, web_clients, worklist
from bench.corpora import Corpus, make
from bench.runs import (
    Timing,
    compile_bytecode,
    get_runs,
    move_runs,
    register_move_destinations,
    store_runs,
    third_party_move_runs,
)
from pacskit.testing.peers import Orthanc, StoreSCP, storescu

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "pacskit-bench"
DEFAULT_SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else None


def best(runs: list[list[Timing]]) -> list[Timing]:
    """The fastest of each tool over repeated runs."""
    by_tool: dict[str, Timing] = {}
    for timing in (t for run in runs for t in run):
        if timing.tool not in by_tool or timing.seconds < by_tool[timing.tool].seconds:
            by_tool[timing.tool] = timing
    return list(by_tool.values())


def report(title: str, timings: list[Timing]) -> None:
    baseline = timings[0]
    print(f"\n{title}: {baseline.corpus.count} instances, {baseline.corpus.bytes / 1e6:.1f} MB")
    width = max(len(t.tool) for t in timings) + 2
    print(f"  {'tool':<{width}}{'seconds':>9}{'inst/s':>10}{'MB/s':>9}{'ratio':>8}")
    for t in timings:
        print(f"  {t.tool:<{width}}{t.seconds:>9.2f}{t.per_second:>10.0f}{t.mb_per_second:>9.1f}"
              f"{t.per_second / baseline.per_second:>8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=2000, help="small instances (64×64)")
    parser.add_argument("--large", type=int, default=100, help="large instances (512×512)")
    parser.add_argument("--big", type=int, default=2000,
                        help="instances of 512×512 in the 1 GB study (--only big)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tool; the best counts")
    parser.add_argument("--only", choices=("store", "get", "move", "archive", "web", "webclient", "page", "concurrency", "worklist", "tls", "deid", "startup", "big"), help="one benchmark only")
    parser.add_argument("--find-instances", type=int, default=50000,
                        help="instances indexed for the C-FIND latency (archive benchmark)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where corpora are kept")
    parser.add_argument("--scratch", type=Path, default=DEFAULT_SCRATCH,
                        help="where received files go (a tmpfs by default)")
    args = parser.parse_args(argv)
    compile_bytecode()
    corpora = [] if args.only in ("concurrency", "worklist", "page", "startup", "big") else [
        make(args.cache, "small", instances=args.small, series=4, rows=64),
        make(args.cache, "large", instances=args.large, series=1, rows=512)]
    with tempfile.TemporaryDirectory(prefix="pacskit-bench-", dir=args.scratch) as work:
        root = Path(work)
        if args.only in (None, "store"):
            with StoreSCP(root / "storescp") as scp:
                for corpus in corpora:
                    report(f"C-STORE into DCMTK storescp, {corpus.name}",
                           best([store_runs(corpus, scp) for _ in range(args.repeat)]))
        if args.only in (None, "get"):
            with Orthanc(root / "orthanc") as orthanc:
                load(orthanc, corpora)
                for corpus in corpora:
                    report(f"C-GET from Orthanc, {corpus.name}",
                           best([get_runs(corpus, orthanc, root) for _ in range(args.repeat)]))
                register_move_destinations(orthanc)
                for corpus in corpora:
                    report(f"C-MOVE from Orthanc to the retriever's own storage SCP, {corpus.name}",
                           best([move_runs(corpus, orthanc, root) for _ in range(args.repeat)]))
        if args.only in (None, "move"):
            with Orthanc(root / "orthanc-move") as orthanc, StoreSCP(root / "move-storescp") as scp:
                load(orthanc, corpora)
                orthanc.add_modality("storescp", scp.ae_title, scp.host, scp.port)
                for corpus in corpora:
                    report(f"C-MOVE from Orthanc to DCMTK storescp (a third party), {corpus.name}",
                           best([third_party_move_runs(corpus, orthanc, scp) for _ in range(args.repeat)]))
        if args.only == "big":
            big = make(args.cache, "big", instances=args.big, series=4, rows=512)
            with StoreSCP(root / "storescp") as scp:
                report(f"C-STORE into DCMTK storescp, {big.name}",
                       best([store_runs(big, scp) for _ in range(args.repeat)]))
            _empty_folder(root / "storescp")
            with Orthanc(root / "orthanc") as orthanc:
                load(orthanc, [big])
                report(f"C-GET from Orthanc, {big.name}",
                       best([get_runs(big, orthanc, root, big=True) for _ in range(args.repeat)]))
        if args.only in (None, "archive"):
            disk = Path(tempfile.mkdtemp(prefix="pacskit-bench-disk-", dir=args.cache))
            try:
                for senders in (1, 4):
                    report(f"C-STORE from {senders} DCMTK storescu into Orthanc and pacskit serve "
                           "(files on disk)", archive.ingest_runs(corpora[0], disk, senders))
                for corpus in corpora:
                    report(f"C-GET by DCMTK getscu from Orthanc and pacskit serve, {corpus.name}",
                           archive.serve_runs(corpus, disk, args.repeat))
                many = make(args.cache, "archive", instances=args.find_instances, series=1, rows=16,
                            patients=max(1, args.find_instances // 100), studies=4)
                print(f"\nSearch latency, {many.count} instances in {many.count // 25} studies: "
                      "C-FIND by findscu (whole process), QIDO-RS by one HTTP request")
                print(f"  {'archive':<16}{'C-FIND patient':>16}{'C-FIND all':>12}"
                      f"{'QIDO patient':>14}{'QIDO limit=100':>16}   (ms)")
                for tool, one, every, qido_one, qido_100 in archive.find_latency(many, disk, args.repeat):
                    print(f"  {tool:<16}{one:>16.0f}{every:>12.0f}{qido_one:>14.0f}{qido_100:>16.0f}")
            finally:
                shutil.rmtree(disk, ignore_errors=True)
        if args.only in (None, "web"):
            disk = Path(tempfile.mkdtemp(prefix="pacskit-bench-web-", dir=args.cache))
            try:
                for corpus, parallel in ((corpora[0], 1), (corpora[0], 4), (corpora[1], 1)):
                    stow, wado, zips, media = web.web_runs(corpus, disk, parallel)
                    report(f"STOW-RS into Orthanc and pacskit serve, {corpus.name}, {parallel} "
                           "request(s) at a time, 50 instances each (files on disk)", stow)
                    if parallel == 1:
                        report(f"WADO-RS of the whole study from Orthanc and pacskit serve, {corpus.name}", wado)
                        report(f"The study as a ZIP: Orthanc's /archive, pacskit's application/zip, {corpus.name}",
                               zips)
                        report(f"The study as a ZIP with a DICOMDIR: Orthanc's /media, pacskit's "
                               f"dicomdir=true, {corpus.name}", media)
            finally:
                shutil.rmtree(disk, ignore_errors=True)
        if args.only in (None, "web", "webclient"):
            with Orthanc(root / "orthanc-web-clients") as orthanc:
                load(orthanc, corpora)
                for corpus in corpora:
                    report(f"WADO-RS of the whole study from Orthanc by pacskit's clients, {corpus.name}",
                           web_clients.wado_runs(orthanc.dicomweb_url, corpus, root, args.repeat))
                web_clients.report_qido(orthanc.dicomweb_url, corpora[0], max(5, args.repeat))
        if args.only in (None, "page"):
            page.report(*page.page_runs(args.cache, root, args.repeat))
        if args.only in (None, "concurrency"):
            studies = concurrency.corpus(args.cache)
            for kind, runs in concurrency.find_runs(studies, root, args.repeat):
                concurrency.report(f"{concurrency.FINDS} C-FINDs at once against Orthanc, {kind} "
                                   f"({concurrency.STUDIES} studies, {studies.count} instances)", runs)
        if args.only in (None, "deid"):
            with Orthanc(root / "orthanc-deid") as orthanc:
                load(orthanc, corpora[:1])
                report(f"C-GET from Orthanc, plain vs de-identified, {corpora[0].name}",
                       best([deid.deid_runs(corpora[0], orthanc, root) for _ in range(args.repeat)]))
        if args.only in (None, "startup"):
            startup.report(startup.startup_rows(root, max(5, args.repeat)))
        if args.only in (None, "worklist"):
            worklist.report(worklist.latency(root, args.repeat))
        if args.only in (None, "tls"):
            scp, pki = tls.tls_storescp(root)
            with scp:
                for corpus in corpora:
                    report(f"C-STORE over DICOM TLS into DCMTK storescp +tls, {corpus.name}",
                           best([tls.store_runs(corpus, scp, pki) for _ in range(args.repeat)]))
    return 0


def _empty_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def load(orthanc: Orthanc, corpora: list[Corpus]) -> None:
    for corpus in corpora:
        storescu(orthanc.ae_title, orthanc.host, orthanc.port, [corpus.path])
    expected = sum(c.count for c in corpora)
    if orthanc.instance_count() != expected:
        raise RuntimeError(f"Orthanc holds {orthanc.instance_count()} instances, not {expected}")


if __name__ == "__main__":
    sys.exit(main())
