"""Modality Worklist latency: 10,000 items in ``pacskit serve`` (its index) and in DCMTK
``wlmscpfs`` (one ``.wl`` file each), a query by scheduled date and modality. Two
measures per server, medians over ``repeat`` × 10 queries: one C-FIND on an association
kept open (the library's :class:`~pacskit.net.find.FindSession`), and a whole DCMTK
``findscu -W`` process (association, query, release and process start). The first is
what the client sees, from the request sent to the last response decoded. pacskit is
measured twice: its server in this process beside the client (sharing its interpreter,
so its time includes the client's), and ``pacskit serve`` as a process of its own, as a
user runs it, on the same index. Both servers
must give the same matches; a difference is an error."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from bench.archive import ARCHIVE_AET, SENDER_AET, pacskit_serve
from pacskit import Node, Settings
from pacskit.archive import Archive
from pacskit.archive.worklist import Worklist
from pacskit.net.find import find_session
from pacskit.settings import ArchiveSettings, NodeConfig, WebSettings
from pacskit.testing.peers import WlmScpFs, free_port, peer_env, require
from pacskit.worklist import MODALITY_WORKLIST_FIND, WorklistQuery
from pacskit.worklist.items import checked, item_uid

ITEMS = 10_000
DAYS = 50
MODALITIES = ("CT", "MR", "US", "CR", "NM")
CLIENT_AET = SENDER_AET
QUERIES_PER_RUN = 10


def items(count: int = ITEMS) -> list[Dataset]:
    """``count`` items over :data:`DAYS` days and five modalities (40 a day of each)."""
    made = []
    for number in range(count):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = f"BENCH^PATIENT{number}"
        ds.PatientID = f"P{number:06d}"
        ds.AccessionNumber = f"A{number:06d}"
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.3.{number}"
        ds.RequestedProcedureID = f"RP{number}"
        ds.RequestedProcedureDescription = "bench procedure"
        step = Dataset()
        step.ScheduledStationAETitle = f"STATION{number % 20}"
        step.ScheduledProcedureStepStartDate = _day(number % DAYS)
        step.ScheduledProcedureStepStartTime = f"{8 + number % 10:02d}{number % 60:02d}00"
        step.Modality = MODALITIES[(number // DAYS) % len(MODALITIES)]
        step.ScheduledProcedureStepDescription = "bench step"
        step.ScheduledProcedureStepID = f"SPS{number}"
        ds.ScheduledProcedureStepSequence = Sequence([step])
        made.append(checked(ds, f"bench item {number}"))
    return made


def _day(offset: int) -> str:
    return f"202701{1 + offset:02d}" if offset < 31 else f"202702{offset - 30:02d}"


def query() -> WorklistQuery:
    """The query timed: one day, one modality."""
    return WorklistQuery.build(date=_day(17), modality="CT")


def latency(root: Path, repeat: int) -> list[tuple[str, float, float, int]]:
    """(server, median ms of a C-FIND on an open association, median ms of a findscu
    process, matches) for pacskit (in this process, then ``pacskit serve``) and
    ``wlmscpfs`` holding the same items."""
    made = items()
    wanted = query()
    identifier_file = root / "mwl-query.dcm"
    _save(wanted.to_identifier(), identifier_file)
    rows = []
    settings = Settings(ae_title="BENCHARCH", port=free_port(), bind_address="127.0.0.1",
                        archive=ArchiveSettings(data_dir=root / "mwl-serve", fsync=False),
                        web=WebSettings(enabled=False),
                        nodes={"bench": NodeConfig(ae_title=CLIENT_AET, host="127.0.0.1", port=1)})
    with Archive(settings) as archive:
        worklist = Worklist(archive.index)
        for item in made:
            worklist.add(item, item_uid(item))
        archive.start()
        node = Node(ae_title=settings.ae_title, host="127.0.0.1", port=settings.port)
        rows.append(("pacskit, in-process", *_measure(node, identifier_file, wanted, repeat)))
    with pacskit_serve(root / "mwl-serve", fsync=False) as port:
        node = Node(ae_title=ARCHIVE_AET, host="127.0.0.1", port=port)
        rows.append(("pacskit serve", *_measure(node, identifier_file, wanted, repeat)))
    folder = root / "mwl-wlmscpfs"
    folder.mkdir(exist_ok=True)
    with WlmScpFs(folder) as peer:
        for number, item in enumerate(made):
            _save(item, peer.folder / f"item{number:05d}.wl")
        node = Node(ae_title=peer.ae_title, host="127.0.0.1", port=peer.port)
        rows.append(("DCMTK wlmscpfs", *_measure(node, identifier_file, wanted, repeat)))
    if len({row[3] for row in rows}) != 1:
        raise RuntimeError("the servers found " + ", ".join(f"{row[3]} ({row[0]})" for row in rows))
    return rows


def _measure(node: Node, identifier_file: Path, wanted: WorklistQuery,
             repeat: int) -> tuple[float, float, int]:
    settings = Settings(ae_title=CLIENT_AET)
    identifier = wanted.to_identifier()
    open_times: list[float] = []
    found = 0
    with find_session(settings, node, "worklist") as session:
        for _ in range(repeat * QUERIES_PER_RUN):
            found, seconds = _timed(lambda: len(list(session.find(identifier))))
            open_times.append(seconds)
    process_times = []
    command = [require("findscu"), "-W", "-aet", CLIENT_AET, "-aec", node.ae_title, node.host,
               str(node.port), str(identifier_file)]
    for _ in range(repeat * QUERIES_PER_RUN):
        result, seconds = _timed(lambda: subprocess.run(command, capture_output=True, env=peer_env(), timeout=120))
        if result.returncode != 0:
            raise RuntimeError(f"findscu -W failed against {node.ae_title}: {result.stderr[-500:]!r}")
        process_times.append(seconds)
    return statistics.median(open_times) * 1e3, statistics.median(process_times) * 1e3, found


def _timed(work: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    outcome = work()
    return outcome, time.perf_counter() - started


def _save(ds: Dataset, path: Path) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = MODALITY_WORKLIST_FIND
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)


def report(rows: list[tuple[str, float, float, int]]) -> None:
    print(f"\nModality Worklist, {ITEMS} items, query by date and modality ({rows[0][3]} matches): "
          "median ms")
    print(f"  {'server':<22}{'C-FIND, open association':>26}{'findscu -W process':>20}")
    for server, open_ms, process_ms, _ in rows:
        print(f"  {server:<22}{open_ms:>26.1f}{process_ms:>20.1f}")
