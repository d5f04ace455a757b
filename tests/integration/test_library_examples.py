"""Every ``python`` block of docs/library.md runs as it is, against a live Orthanc holding
the corpus (the node ``pacs``), with Orthanc able to C-MOVE to ``ARCHIVE`` and a folder
``incoming`` beside."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pacskit.testing.peers import StoreSCP

DOC = Path(__file__).resolve().parents[2] / "docs" / "library.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


@pytest.fixture(scope="module")
def destination(tmp_path_factory, orthanc):
    with StoreSCP(tmp_path_factory.mktemp("archive-aet"), ae_title="ARCHIVE") as peer:
        orthanc.add_modality("archive", "ARCHIVE", "127.0.0.1", peer.port)
        yield peer


@pytest.fixture
def environment(monkeypatch, tmp_path, orthanc, destination, corpus_dir):
    for name in list(__import__("os").environ):
        if name.startswith(("PACSKIT_", "CLINIC_DICOM_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PACSKIT_NODES__PACS__AE_TITLE", orthanc.ae_title)
    monkeypatch.setenv("PACSKIT_NODES__PACS__HOST", "127.0.0.1")
    monkeypatch.setenv("PACSKIT_NODES__PACS__PORT", str(orthanc.port))
    (tmp_path / "incoming").symlink_to(corpus_dir, target_is_directory=True)
    return tmp_path


def test_the_page_has_examples():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_example_runs(environment, number, capsys):
    exec(compile(BLOCKS[number], f"{DOC.name} example {number + 1}", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.strip(), "the example shows what it did"
