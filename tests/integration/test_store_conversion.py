"""``pacskit store`` starts without pydicom's pixel back-ends and converts, in a child
process (:mod:`pacskit.conversion`), the files a peer does not accept: through the real
console script to DCMTK storescp taking only uncompressed syntaxes; a conversion over the
conversion timeout, and a child killed mid-conversion, failing only the file it was
converting; a conversion many times larger than a frame; no temporary file left."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
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


def private_tmp(tmp_path, env: dict[str, str]) -> tuple[dict[str, str], Path]:
    """``env`` with a TMPDIR of its own (where the conversion's folder goes), and it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    return {**env, "TMPDIR": str(folder)}, folder


SLOW_UID = "1.2.826.0.1.3680043.8.498.424242"


def slow_to_convert(path: Path, items: int = 1_000_000) -> Path:
    """pydicom's JPEG baseline sample with a Request Attributes Sequence of ``items``
    one-element items before its pixel data (18 bytes each): pydicom takes about 55 µs
    an item here to read and write it again, so a minute for a million."""
    body = b"\x40\x00\x01\x10SH\x02\x00X "  # (0040,1001) Requested Procedure ID
    item = b"\xfe\xff\x00\xe0" + struct.pack("<I", len(body)) + body
    sequence = (b"\x40\x00\x75\x02SQ\x00\x00\xff\xff\xff\xff" + item * items  # (0040,0275), undefined length
                + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    dataset = dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    dataset.SOPInstanceUID = SLOW_UID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.save_as(path, enforce_file_format=True)
    saved = path.read_bytes()
    at = saved.index(b"\xe0\x7f\x10\x00")  # (7FE0,0010), after the last other element, (0028,2114)
    path.write_bytes(saved[:at] + sequence + saved[at:])
    return path


def store(tmp_path, folder: Path, peer: StoreSCP, env: dict[str, str]) -> tuple[subprocess.Popen[str], str, str]:
    command = subprocess.Popen([console_script(tmp_path), "store", folder, "--to", peer.address, "-f", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = command.communicate(timeout=120)
    return command, stdout, stderr


def test_a_folder_with_a_jpeg_file_reaches_a_peer_without_compressed_syntaxes(tmp_path):
    """The JPEG 2000 file's conversion, 526,970 bytes, is eight frames' worth
    (:data:`~pacskit.conversion.MAX_FRAME`): it never crosses the pipe."""
    folder = tmp_path / "folder"
    folder.mkdir()
    jpeg = shutil.copy(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"), folder / "jpeg.dcm")
    plain = shutil.copy(get_testdata_file("CT_small.dcm"), folder / "plain.dcm")
    j2k = shutil.copy(get_testdata_file("JPEG2000.dcm"), folder / "j2k.dcm")
    env, report = reporting_imports(tmp_path)
    env, tmp = private_tmp(tmp_path, env)
    with StoreSCP(tmp_path / "scp", accept_all=False) as peer:
        command, stdout, stderr = store(tmp_path, folder, peer, env)
        received = {dcmread(path).SOPInstanceUID: path for path in peer.received()}
    assert command.returncode == 0, stderr
    summary = json.loads(stdout)
    assert (summary["sent"], summary["failed"], summary["converted"]) == (3, 0, 2)
    assert list(tmp.iterdir()) == []
    big = dcmread(received[dcmread(j2k).SOPInstanceUID])
    assert len(big.PixelData) >= 8 * conversion.MAX_FRAME
    assert np.array_equal(big.pixel_array, dcmread(j2k).pixel_array)
    parent = imported(report, command.pid)
    assert {"pydicom", "pacskit.net.store", "pacskit.conversion"} <= parent
    assert not PIXEL & parent
    children = [path for path in report.glob("*.json") if path.stem != str(command.pid)]
    assert len(children) == 1  # the conversion child, which decoded the JPEG file
    assert {"numpy", "pydicom"} <= imported(report, int(children[0].stem))
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


def failures(stdout: str) -> dict[str, str]:
    summary = json.loads(stdout)
    return {Path(failure["path"]).name: failure["reason"] for failure in summary["failures"]}


def test_a_conversion_over_the_timeout_fails_that_file_and_the_next_converts(tmp_path):
    """``PACSKIT_CONVERSION_TIMEOUT=3``: the slow file takes about a minute to convert
    here (20 times the timeout), the JPEG file after it a few milliseconds once its new
    child is ready."""
    folder = tmp_path / "folder"
    folder.mkdir()
    slow_to_convert(folder / "a-slow.dcm")
    jpeg = shutil.copy(get_testdata_file("SC_rgb_jpeg_gdcm.dcm"), folder / "b-jpeg.dcm")
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "c-plain.dcm")
    env, tmp = private_tmp(tmp_path, {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")})
    env["PACSKIT_CONVERSION_TIMEOUT"] = "3"
    with StoreSCP(tmp_path / "scp", accept_all=False) as peer:
        began = time.monotonic()
        command, stdout, stderr = store(tmp_path, folder, peer, env)
        took = time.monotonic() - began
        received = {dcmread(path).SOPInstanceUID for path in peer.received()}
    assert command.returncode == 26, stderr  # PartialFailure
    summary = json.loads(stdout)
    assert (summary["sent"], summary["failed"], summary["converted"]) == (2, 1, 1)
    assert failures(stdout) == {"a-slow.dcm": f"{peer.ae_title}@{peer.host}:{peer.port} does not accept JPEG "
                                              "Baseline (Process 1) and pacskit cannot decompress it (the "
                                              "conversion took longer than 3 s and was stopped)"}
    assert dcmread(jpeg).SOPInstanceUID in received and SLOW_UID not in received
    assert len(received) == 2
    assert 3 <= took < 60
    assert list(tmp.iterdir()) == []


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry.name))
    return found


def has_open(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def test_the_child_killed_mid_store_fails_that_file_and_the_rest_are_stored(tmp_path):
    """The command's child is killed once it has the slow file open (seen in
    ``/proc/PID/fd``): that file fails, the JPEG file after it starts a new child."""
    folder = tmp_path / "folder"
    folder.mkdir()
    slow = slow_to_convert(folder / "a-slow.dcm")
    shutil.copy(get_testdata_file("SC_rgb_jpeg_gdcm.dcm"), folder / "b-jpeg.dcm")
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "c-plain.dcm")
    env, tmp = private_tmp(tmp_path, {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")})
    killed: list[int] = []
    with StoreSCP(tmp_path / "scp", accept_all=False) as peer:
        command = subprocess.Popen([console_script(tmp_path), "store", folder, "--to", peer.address, "-f", "json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while not killed and command.poll() is None and time.monotonic() < deadline:
            for child in children_of(command.pid):
                if has_open(child, slow):
                    os.kill(child, signal.SIGKILL)
                    killed.append(child)
            time.sleep(0.01)
        stdout, stderr = command.communicate(timeout=120)
        received = {dcmread(path).SOPInstanceUID for path in peer.received()}
    assert killed, stderr
    assert command.returncode == 26, stderr  # PartialFailure
    summary = json.loads(stdout)
    assert (summary["sent"], summary["failed"], summary["converted"]) == (2, 1, 1)
    assert "the conversion process ended while converting it (killed by signal 9)" in failures(stdout)["a-slow.dcm"]
    assert len(received) == 2
    assert list(tmp.iterdir()) == []
