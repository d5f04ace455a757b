"""A client-only install (``pip install pacskit``, no extra): the client commands work
against real peers with the server extra's packages absent, and a command that needs them
says which extra to install (exit 9). The packages are made unimportable by a
``sitecustomize`` on the path of each process, as if pip had never installed them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydicom import dcmread

from pacskit.extras import EXTRA_OF_MODULE

SRC = Path(__file__).parents[2] / "src"
BLOCKER = textwrap.dedent(f"""
    import sys
    BLOCKED = {sorted(EXTRA_OF_MODULE)!r}
    class _NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None
    sys.meta_path.insert(0, _NotInstalled())
""")


@pytest.fixture(scope="module")
def client_only(tmp_path_factory):
    """Environment of a process where the extras' packages are not installed."""
    folder = tmp_path_factory.mktemp("client-only")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    return {**env, "PYTHONPATH": f"{folder}{os.pathsep}{SRC}", "PACSKIT_AE_TITLE": "PACSKIT"}


def pacskit(env, *args, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from pacskit.cli.launch import main; main()", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_the_blocker_hides_the_server_packages(client_only, tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import sqlalchemy"], capture_output=True, text=True,
                           env=client_only, cwd=tmp_path, timeout=60)
    assert probe.returncode == 1 and "No module named 'sqlalchemy'" in probe.stderr


def test_client_commands_work_without_the_extras(client_only, dcmqrscp, storescp, corpus, tmp_path):
    first = corpus[0]
    echo = pacskit(client_only, "echo", dcmqrscp.address, cwd=tmp_path)
    assert echo.returncode == 0, echo.stderr
    found = pacskit(client_only, "find", dcmqrscp.address, "-l", "study", "-f", "json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert first.study_uid in found.stdout
    got = pacskit(client_only, "get", dcmqrscp.address, "--study-uid", first.study_uid, "-o", tmp_path / "got",
                  cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    written = sorted((tmp_path / "got").rglob("*.dcm"))
    assert written and {dcmread(p).StudyInstanceUID for p in written} == {first.study_uid}
    copied = pacskit(client_only, "copy", dcmqrscp.address, tmp_path / "copied", "--study-uid", first.study_uid,
                     cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    assert len(list((tmp_path / "copied").rglob("*.dcm"))) == len(written)
    stored = pacskit(client_only, "store", tmp_path / "got", "--to", storescp.address, cwd=tmp_path)
    assert stored.returncode == 0, stored.stderr
    assert len(list(storescp.output_dir.rglob("*"))) >= len(written)


@pytest.mark.parametrize("args", [["serve"], ["archive", "import", "."], ["worklist", "ls"]],
                         ids=["serve", "archive import", "worklist ls"])
def test_server_commands_say_which_extra_to_install(client_only, tmp_path, args):
    result = pacskit(client_only, *args, cwd=tmp_path)
    assert result.returncode == 9, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [
        "pacskit: error: this needs pacskit's server extra (sqlalchemy is not installed): "
        "pip install 'pacskit[server]'"]
    assert not (tmp_path / "pacskit-data").exists() or not any((tmp_path / "pacskit-data").rglob("*.dcm"))
