"""Start-up: whole processes that do almost nothing, pacskit beside DCMTK's tools and
``python -c pass``, against one DCMTK dcmqrscp holding one instance.

The targets (issue 16, on an idle machine): ``--version`` and ``--help`` at most 0.15 s,
``echo`` 0.35 s, ``find`` and ``get`` of one instance 0.6 s (``store`` of one uncompressed
instance into DCMTK storescp has none; nor has ``store, converted``, one JPEG baseline
instance into a storescp taking only uncompressed syntaxes, beside DCMTK's dcmdjpeg then
storescu). Each row is the median of
``repeat`` runs; the ratio is DCMTK's time over pacskit's (1.0: as fast as DCMTK)."""

from __future__ import annotations

import shlex
import shutil
import statistics
import sys
from pathlib import Path

from pydicom.data import get_testdata_file

from bench.runs import pacskit, timed
from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import DcmQrSCP, StoreSCP, require

TARGETS = {"--version": 0.15, "--help": 0.15, "echo": 0.35, "find": 0.6, "get": 0.6, "store": 0.0, "store, converted": 0.0}


def startup_rows(root: Path, repeat: int) -> list[tuple[str, float, float, float]]:
    """(what, pacskit seconds, DCMTK seconds, target seconds) for each row, and the
    interpreter's own start as the first."""
    instance = generate_corpus(root / "startup-corpus", patients=1, studies_per_patient=1,
                               series_per_study=1, instances_per_series=1, seed=3)[0]
    out = root / "startup-out"
    jpeg = get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")
    with (DcmQrSCP(root / "startup-dcmqrscp") as peer, StoreSCP(root / "startup-storescp") as scp,
          StoreSCP(root / "startup-storescp-plain", accept_all=False) as plain):
        peer.load([instance.path])
        study = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={instance.study_uid}"]
        host = [peer.host, str(peer.port)]
        rows = {
            "--version": (pacskit("--version"), [require("echoscu"), "--version"]),
            "--help": (pacskit("--help"), [require("findscu"), "--help"]),
            "echo": (pacskit("echo", peer.address), [require("echoscu"), "-aec", peer.ae_title, *host]),
            "find": (pacskit("find", peer.address, "-l", "study", "--study-uid", instance.study_uid),
                     [require("findscu"), "-S", "-aec", peer.ae_title, *study, *host]),
            "get": (pacskit("get", peer.address, "--study-uid", instance.study_uid, "-o", out),
                    [require("getscu"), "-S", "-aec", peer.ae_title, *study, "-od", str(out), *host]),
            "store": (pacskit("store", instance.path, "--to", scp.address),
                      [require("storescu"), "-aec", scp.ae_title, scp.host, str(scp.port), str(instance.path)]),
            "store, converted": (
                pacskit("store", jpeg, "--to", plain.address),
                ["sh", "-c", shlex.join([require("dcmdjpeg"), jpeg, str(out / "plain.dcm")]) + " && "
                 + shlex.join([require("storescu"), "-aec", plain.ae_title, plain.host, str(plain.port),
                               str(out / "plain.dcm")])]),
        }
        floor = _median([sys.executable, "-c", "pass"], repeat, out)
        measured = [("python -c pass", floor, floor, 0.0)]
        for what, (ours, dcmtk) in rows.items():
            measured.append((what, _median(ours, repeat, out), _median(dcmtk, repeat, out), TARGETS[what]))
    return measured


def _median(command: list[str], repeat: int, out: Path) -> float:
    seconds = []
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        seconds.append(timed(command))
    return statistics.median(seconds)


def report(rows: list[tuple[str, float, float, float]]) -> None:
    print("\nStart-up: whole processes, median, against DCMTK dcmqrscp holding one instance")
    print(f"  {'command':<18}{'pacskit s':>11}{'DCMTK s':>10}{'ratio':>8}{'target s':>10}")
    for what, ours, dcmtk, target in rows:
        verdict = "" if not target else ("  met" if ours <= target else "  missed")
        print(f"  {what:<18}{ours:>11.3f}{dcmtk:>10.3f}{dcmtk / ours:>8.2f}{target or '':>10}{verdict}")
