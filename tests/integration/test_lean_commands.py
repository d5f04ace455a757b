"""What a light command loads, pinned so that a start-up gain cannot silently regress
(docs/start-up.md): each command runs as its own process against DCMTK dcmqrscp and
reports the modules it imported. An echo imports neither pynetdicom (pacskit's own
A-ASSOCIATE codec, :mod:`pacskit.net.ul.associate_rq` and ``associate_ac``) nor pydicom
(imported when first needed, :func:`pacskit.cli.launch.defer_pydicom_without`), unless
``-v`` asks for the UID names pydicom's dictionary gives. A store imports none of pydicom's pixel back-ends, even when it converts a file
the peer does not accept (the conversion runs in a child process, :mod:`pacskit.conversion`);
nor does a copy from a node into a folder, or from a folder to a node that needs a conversion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from pacskit.testing.peers import StoreSCP

SERVICES = {"pacskit.retrieve", "pacskit.storage", "pacskit.send", "pacskit.finder", "pacskit.net.find",
            "pacskit.net.retrieve", "pacskit.net.store", "pacskit.transfer", "pacskit.sinks"}
NEVER = {"numpy", "PIL", "requests", "httpx", "pacskit.web", "pacskit.archive", "pacskit.aio",
         "pacskit.deid.profile", "pacskit.deid.table"}
ECHO_NEVER = {"pacskit.models", "pacskit.level_queries", "pacskit.results", "pacskit.query",
              "pacskit.sources", "rich.table"}
"""Imported by a find or a get, not by an echo: the result and query models (an echo's result
is :mod:`pacskit.echo_result`) and Rich's table, which only a terminal gets."""
PIXEL = {"numpy", "PIL", "pylibjpeg", "libjpeg", "openjpeg", "rle"}


def run_reporting_imports(cwd, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    probe = ("import atexit, json, sys\n"
             "atexit.register(lambda: open('modules.json', 'w').write(json.dumps(sorted(sys.modules))))\n"
             f"sys.argv = ['pacskit', *{list(args)!r}]\n"
             "from pacskit.cli.launch import main\n"
             "main()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            cwd=cwd, env=env)
    return result, set(json.loads((cwd / "modules.json").read_text()))


def top(names: set[str]) -> set[str]:
    return names | {name.split(".")[0] for name in names}


def address(peer) -> str:
    return f"dicom://{peer.ae_title}@{peer.host}:{peer.port}"


def test_an_echo_loads_no_service_module_no_pynetdicom_and_no_pydicom(dcmqrscp, tmp_path):
    result, modules = run_reporting_imports(tmp_path, "echo", address(dcmqrscp), "-f", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["result"] == "success"
    assert "pacskit.net.echo" in modules
    assert not (SERVICES | NEVER | {"pynetdicom", "pydicom"}) & top(modules)
    assert not ECHO_NEVER & modules
    assert not any(name.startswith("pacskit.deid") for name in modules)


@pytest.mark.parametrize("command", ["find", "get"])
def test_find_and_get_load_only_their_own_service(dcmqrscp, corpus, tmp_path, command):
    study = corpus[0].study_uid
    extra = ["-o", str(tmp_path / "out")] if command == "get" else ["-f", "json"]
    result, modules = run_reporting_imports(tmp_path, command, address(dcmqrscp), "--study-uid", study, *extra)
    assert result.returncode == 0, result.stderr
    if command == "find":
        assert [match["StudyInstanceUID"] for match in json.loads(result.stdout)] == [study]
        assert "pacskit.net.find" in modules
        assert not (SERVICES - {"pacskit.finder", "pacskit.net.find"} | NEVER) & top(modules)
    else:
        assert len(list((tmp_path / "out").rglob("*.dcm"))) == sum(1 for i in corpus if i.study_uid == study)
        assert {"pacskit.retrieve", "pacskit.transfer"} <= modules
        assert not ({"pacskit.send", "pacskit.sinks"} | NEVER) & top(modules)


@pytest.mark.parametrize("sample", ["CT_small.dcm", "SC_rgb_jpeg_dcmtk.dcm"])
def test_a_store_loads_no_pixel_module_even_when_it_converts(tmp_path, sample):
    """An uncompressed file goes as it is; a JPEG baseline one, to a storescp that takes
    only uncompressed syntaxes, is converted by the child and arrives decompressed."""
    source = get_testdata_file(sample)
    original = dcmread(source)
    with StoreSCP(tmp_path / "scp", accept_all=False) as peer:
        result, modules = run_reporting_imports(tmp_path, "store", source, "--to", address(peer), "-f", "json")
        received = peer.received()
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    converting = original.file_meta.TransferSyntaxUID.is_compressed
    assert (summary["sent"], summary["converted"]) == (1, int(converting))
    assert [dcmread(path).SOPInstanceUID for path in received] == [original.SOPInstanceUID]
    assert not dcmread(received[0]).file_meta.TransferSyntaxUID.is_compressed
    assert "pacskit.net.store" in modules
    assert not (PIXEL | NEVER) & top(modules), (PIXEL | NEVER) & top(modules)


def test_a_copy_loads_no_pixel_module_into_a_folder_or_a_node_that_needs_a_conversion(dcmqrscp, corpus, tmp_path):
    """(A copy naming ``archive`` starts with them: any word that names a pixel command does.)"""
    study = corpus[0].study_uid
    result, modules = run_reporting_imports(tmp_path, "copy", address(dcmqrscp), str(tmp_path / "out"),
                                            "--study-uid", study, "-f", "json")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == sum(1 for i in corpus if i.study_uid == study)
    assert not (PIXEL | NEVER) & top(modules), (PIXEL | NEVER) & top(modules)
    jpeg = tmp_path / "jpeg"
    jpeg.mkdir()
    (jpeg / "one.dcm").write_bytes(Path(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")).read_bytes())
    with StoreSCP(tmp_path / "scp", accept_all=False) as peer:
        result, modules = run_reporting_imports(tmp_path, "copy", str(jpeg), address(peer), "-l", "image",
                                                "-f", "json")
        received = peer.received()
    assert result.returncode == 0, result.stderr
    assert len(received) == 1 and not dcmread(received[0]).file_meta.TransferSyntaxUID.is_compressed
    assert not PIXEL & top(modules), PIXEL & top(modules)
