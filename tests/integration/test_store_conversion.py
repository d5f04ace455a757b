"""``pacskit store`` starts without pydicom's pixel back-ends and converts, in a child
process (:mod:`pacskit.conversion`), the files a peer does not accept: through the real
console script to DCMTK storescp taking only uncompressed syntaxes, and a child killed
mid-conversion failing only the file it was converting."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file

from pacskit import Node, Settings, conversion
from pacskit.net.store import SendOutcome, send_files
from pacskit.scan import read_file
from pacskit.testing.peers import StoreSCP

PIXEL = {"numpy", "PIL", "pylibjpeg", "libjpeg", "openjpeg", "rle"}
REPORTER = """import atexit, json, os, sys
atexit.register(lambda: open(os.path.join(os.environ["MODULES_REPORT"], f"{os.getpid()}.json"), "w")
                .write(json.dumps(sorted(sys.modules))))
"""


def console_script(tmp_path):
    """A ``pacskit`` executable, as pip writes the console script."""
    script = tmp_path / "bin" / "pacskit"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nfrom pacskit.cli.launch import main\nmain()\n")
    script.chmod(0o755)
    return script


def reporting_imports(tmp_path) -> tuple[dict[str, str], os.PathLike[str]]:
    """An environment in which each Python process writes the modules it imported, at its
    exit, to ``PID.json`` in the folder returned (a ``sitecustomize`` on PYTHONPATH)."""
    hook, report = tmp_path / "hook", tmp_path / "modules"
    hook.mkdir()
    report.mkdir()
    (hook / "sitecustomize.py").write_text(REPORTER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(hook), *filter(None, [env.get("PYTHONPATH")])])
    return {**env, "MODULES_REPORT": str(report)}, report


def imported(report, pid: int) -> set[str]:
    """The modules process ``pid`` imported, top-level names too."""
    names = set(json.loads((report / f"{pid}.json").read_text()))
    return names | {name.split(".")[0] for name in names}


def test_a_folder_with_a_jpeg_file_reaches_a_peer_without_compressed_syntaxes(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    jpeg = shutil.copy(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"), folder / "jpeg.dcm")
    plain = shutil.copy(get_testdata_file("CT_small.dcm"), folder / "plain.dcm")
    env, report = reporting_imports(tmp_path)
    with StoreSCP(tmp_path / "scp", accept_all=False) as peer:
        command = subprocess.Popen([console_script(tmp_path), "store", folder, "--to", peer.address, "-f", "json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        stdout, stderr = command.communicate(timeout=120)
        received = {dcmread(path).SOPInstanceUID: path for path in peer.received()}
    assert command.returncode == 0, stderr
    summary = json.loads(stdout)
    assert (summary["sent"], summary["failed"], summary["converted"]) == (2, 0, 1)
    parent = imported(report, command.pid)
    assert {"pydicom", "pacskit.net.store", "pacskit.conversion"} <= parent
    assert not PIXEL & parent
    children = [path for path in report.glob("*.json") if path.stem != str(command.pid)]
    assert len(children) == 1  # the conversion child, which decoded the JPEG file
    assert {"numpy", "pydicom", "pynetdicom"} <= imported(report, int(children[0].stem))
    original, got = dcmread(jpeg), dcmread(received[dcmread(jpeg).SOPInstanceUID])
    assert original.file_meta.TransferSyntaxUID.is_compressed
    assert not got.file_meta.TransferSyntaxUID.is_compressed
    assert np.array_equal(got.pixel_array, original.pixel_array)
    assert got.PixelData == original.pixel_array.tobytes()
    untouched = dcmread(received[dcmread(plain).SOPInstanceUID])
    assert untouched.PixelData == dcmread(plain).PixelData


def test_a_child_killed_mid_conversion_fails_that_file_and_the_others_are_sent(tmp_path):
    """The first JPEG file is read from a FIFO: the child blocks on it and is killed once
    it has opened it; the second JPEG file starts a new child; the uncompressed one goes
    as it is."""
    first = read_file(Path(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")))
    second = read_file(Path(get_testdata_file("SC_rgb_jpeg_gdcm.dcm")))
    plain = read_file(Path(get_testdata_file("CT_small.dcm")))
    fifo = tmp_path / "fifo.dcm"
    os.mkfifo(fifo)
    blocked = dataclasses.replace(first, path=fifo)
    outcomes: list[SendOutcome] = []
    with conversion.in_child() as child, StoreSCP(tmp_path / "scp", accept_all=False) as peer:

        def kill_once_opened() -> None:
            with open(fifo, "wb"):
                pid = child.pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_once_opened, daemon=True)
        killer.start()
        try:
            send_files(Settings(), Node(ae_title=peer.ae_title, host=peer.host, port=peer.port),
                       [blocked, second, plain], outcomes.append)
        finally:
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            killer.join(10)
        received = {dcmread(path).SOPInstanceUID for path in peer.received()}
        started = child.started
    by_file = {outcome.file: outcome for outcome in outcomes}
    assert by_file[blocked].status is None
    assert "the conversion process ended while converting it (killed by signal 9)" in by_file[blocked].reason
    assert "cannot decompress it" in by_file[blocked].reason
    assert (by_file[second].status, by_file[second].converted) == (0, True)
    assert (by_file[plain].status, by_file[plain].converted) == (0, False)
    assert received == {second.sop_instance_uid, plain.sop_instance_uid}
    assert started == 2
