"""Start-up of two pacskit trees side by side: wall and CPU time of whole processes.

    PYTHONPATH=$PWD/src .venv/bin/python scripts/startup_cpu.py /work/main/src $PWD/src [--repeat 9]

Each ``src`` folder's bytecode is compiled first (as an installed pacskit has it). Then
``--help``, ``echo``, ``find`` of one study and ``get`` of one instance run against one
DCMTK dcmqrscp, as ``python -m pacskit`` with ``PYTHONPATH`` set to each tree in turn,
the trees interleaved run by run so that both see the same load. CPU is the child's user
and system time (``wait4``), which other jobs on a shared machine disturb less than the
wall time; each figure is the median of ``--repeat`` runs (docs/start-up.md).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import DcmQrSCP


def run(src: str, args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``python -m pacskit ARGS`` with ``src`` first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    env["PYTHONPATH"] = src
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "pacskit", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    errors = child.stderr.read().decode() if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{src}: pacskit {' '.join(args)} failed: {errors}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="src folders to compare")
    parser.add_argument("--repeat", type=int, default=9)
    options = parser.parse_args()
    for src in options.trees:
        compileall.compile_dir(Path(src) / "pacskit", quiet=1)
    root = Path(tempfile.mkdtemp(prefix="startup-cpu-"))
    try:
        instance = generate_corpus(root / "corpus", patients=1, studies_per_patient=1, series_per_study=1,
                                   instances_per_series=1, seed=3)[0]
        out = root / "out"
        with DcmQrSCP(root / "dcmqrscp") as peer:
            peer.load([instance.path])
            commands = {
                "--help": ["--help"],
                "echo": ["echo", peer.address],
                "find": ["find", peer.address, "-l", "study", "--study-uid", instance.study_uid],
                "get": ["get", peer.address, "--study-uid", instance.study_uid, "-o", str(out)],
            }
            runs: dict[tuple[str, str], list[tuple[float, float]]] = {
                (what, src): [] for what in commands for src in options.trees}
            for _ in range(options.repeat):
                for what, args in commands.items():
                    for src in options.trees:
                        shutil.rmtree(out, ignore_errors=True)
                        out.mkdir()
                        runs[what, src].append(run(src, args))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"median of {options.repeat}, seconds: wall / CPU (user+sys)")
    for what in commands:
        cells = [f"{statistics.median(w for w, _ in runs[what, src]):.3f} / "
                 f"{statistics.median(c for _, c in runs[what, src]):.3f}" for src in options.trees]
        print(f"  {what:<8}" + "".join(f"{cell:>20}" for cell in cells))
    print("  columns: " + ", ".join(options.trees))


if __name__ == "__main__":
    main()
