"""Peak resident memory (VmHWM of /proc/PID/status) of a server process, reset before
a hostile input is sent, and of a ``pacskit`` command run to its end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_MEASURED_CLI = """
import atexit, runpy, sys
report = sys.argv[1]
def _peak():
    with open(report, "w") as out:
        out.write(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
atexit.register(_peak)
sys.argv = ["pacskit", *sys.argv[2:]]
runpy.run_module("pacskit", run_name="__main__")
"""


def peak_kib(pid: int) -> int:
    """The highest resident set size process ``pid`` has had (since its last reset), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


def reset_peak(pid: int) -> int:
    """Make the peak of ``pid`` its present resident set size (clear_refs 5); that size."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return peak_kib(pid)


def run_measured_cli(*args: object, workdir: Path, timeout: float = 120,
                     settings: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], int]:
    """``pacskit ARGS...`` in a subprocess (no PACSKIT_* settings but ``settings``, as
    ``{"MAX_PDU": "0"}``), and its peak resident memory in KiB."""
    report = workdir / f"peak-{os.getpid()}-{len(list(workdir.glob('peak-*')))}.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    env["COLUMNS"] = "200"
    env.update({f"PACSKIT_{name}": value for name, value in (settings or {}).items()})
    result = subprocess.run([sys.executable, "-c", _MEASURED_CLI, str(report), *map(str, args)],
                            capture_output=True, text=True, env=env, timeout=timeout)
    return result, int(report.read_text())
