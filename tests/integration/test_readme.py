"""The README is tested code: every command block in it runs, as written, against live peers.

The README's examples use a PACS node called ``pacs``, a patient ``12345`` whose study
``1.2.3`` has a CT series ``1.2.3.4`` and an MR series, a C-MOVE destination
``WORKSTATION``, the folders ``scans/`` and ``./folder``, a file ``more.dcm``, and Orthanc
on its default ports. The world below makes each of those real: an Orthanc holding such
a corpus, a ``pacskit.toml`` naming it ``pacs``, a DCMTK storescp known to Orthanc as
WORKSTATION. Only what cannot be literal on a shared test machine is substituted
(:data:`SUBSTITUTIONS`: ports that are taken, the placeholder host of a PostgreSQL URL);
a command that would reach a host other than loopback fails the test until a
substitution is added for it.

Each ``sh`` line runs in bash; a ``pacskit serve`` or ``make run`` line is started, must
answer a C-ECHO, and must stop cleanly on Ctrl-C. Each ``toml`` block must load as
settings, and each ``python`` block runs as a script. Every command must exit 0 without
a traceback, a ``find`` must find something, a ``get`` or ``export`` must write files, and
no output or written path or byte may carry a patient name.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from postgres import fresh_database
from pydicom import dcmread

from pacskit.settings import Settings
from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import Orthanc, StoreSCP, echoscu, free_port

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

NOT_RUN = {
    "make test": "this suite is what `make test` runs",
}
LONG_RUNNING = ("pacskit serve", "pacskit --port", "make run")


@dataclass(frozen=True)
class Block:
    """A fenced code block of the README."""

    language: str
    line: int
    text: str


def readme_blocks() -> list[Block]:
    """The fenced blocks of the README, with the line each starts on."""
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            if language is None:
                language, start, lines = line[3:].strip(), number + 1, []
            else:
                blocks.append(Block(language, start, "\n".join(lines)))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def shell_commands() -> list[tuple[int, str]]:
    """Each command of the ``sh`` blocks, without its comment, with its README line; an
    optional flag written ``[--flag]`` gives the command with and without it."""
    commands = []
    for block in readme_blocks():
        if block.language != "sh":
            continue
        for offset, line in enumerate(block.text.splitlines()):
            words = shlex.split(line, comments=True)
            if not words:
                continue
            command = _without_comment(line)
            optional = re.search(r" \[(--[a-z-]+)\]", command)
            if optional:
                commands.append((block.line + offset, command.replace(optional.group(0), "")))
                command = command.replace(optional.group(0), " " + optional.group(1))
            commands.append((block.line + offset, command))
    return commands


def _without_comment(line: str) -> str:
    """``line`` up to its ``#`` comment (outside quotes)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


class World:
    """The places the README's examples name, made real on loopback."""

    def __init__(self, root: Path, orthanc: Orthanc, workstation: StoreSCP, database: str) -> None:
        self.root = root
        self.cwd = root / "work"
        self.orthanc = orthanc
        self.workstation = workstation
        self.database = database
        self.port = free_port()
        self.web_port = free_port()
        self.archive_web_port = free_port()
        self.names: set[str] = set()

    @property
    def substitutions(self) -> dict[str, str]:
        """README text → what stands for it here."""
        return {
            "127.0.0.1:4242": f"127.0.0.1:{self.orthanc.port}",
            "127.0.0.1:8042": f"127.0.0.1:{self.orthanc.http_port}",
            "127.0.0.1:8080": f"127.0.0.1:{self.archive_web_port}",
            "port=4242": f"port={self.orthanc.port}",
            "--port 4242 serve": f"--port {free_port()} serve",
            "/srv/pacs": str(self.root / "srv-pacs"),
            "postgresql://pacs@dbhost/pacs": self.database,
        }

    def substitute(self, text: str) -> str:
        for placeholder, value in self.substitutions.items():
            text = text.replace(placeholder, value)
        hosts = re.findall(r"://(?:[^/@\s]+@)?([A-Za-z0-9.-]+)", text)
        hosts += re.findall(r"host\s*=\s*[\"']([^\"']+)", text)
        for host in hosts:
            assert host in ("127.0.0.1", "localhost"), (
                f"a README command reaches {host!r}: only loopback may be a target here; "
                f"add a substitution to {__name__}.World.substitutions: {text}")
        return text

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
        return {**base, "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}", "COLUMNS": "200",
                "TCP_NODELAY": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def readme_corpus(root: Path) -> tuple[Path, set[str]]:
    """The synthetic corpus, its first patient, study and series renamed to the README's
    ``12345``, ``1.2.3`` and ``1.2.3.4`` (a CT series beside an MR one, January 2024, 'CT
    THORAX' at HOSP), the patient's other study to ``1.2.4``. Returns its folder and the
    patient names it carries."""
    made = generate_corpus(root / "generated", patients=2, studies_per_patient=2,
                           series_per_study=2, instances_per_series=2, seed=11)
    first = made[0]
    second_study = next(m.study_uid for m in made if m.patient_id == first.patient_id
                        and m.study_uid != first.study_uid)
    renamed = {first.study_uid: "1.2.3", first.series_uid: "1.2.3.4", second_study: "1.2.4"}
    scans = root / "scans"
    names = set()
    for item in made:
        ds = dcmread(item.path)
        names.add(str(ds.PatientName))
        if item.patient_id == first.patient_id:
            ds.PatientID = "12345"
        if item.study_uid == first.study_uid:
            ds.StudyInstanceUID = "1.2.3"
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240115"
            ds.StudyDescription = "CT THORAX"
            ds.InstitutionName = "HOSP"
        ds.StudyInstanceUID = renamed.get(ds.StudyInstanceUID, ds.StudyInstanceUID)
        ds.SeriesInstanceUID = renamed.get(ds.SeriesInstanceUID, ds.SeriesInstanceUID)
        target = scans / ds.PatientID / f"{ds.SOPInstanceUID}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
    return scans, names


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    scans, names = readme_corpus(root)
    with fresh_database("pacskit_readme") as database, \
            StoreSCP(root / "workstation", ae_title="WORKSTATION") as workstation, \
            Orthanc(root / "orthanc") as orthanc:
        orthanc.load([scans])
        made = World(root, orthanc, workstation, database)
        made.names = names
        orthanc.add_modality("pacskit", "PACSKIT", "127.0.0.1", made.port)
        orthanc.add_modality("workstation", "WORKSTATION", workstation.host, workstation.port)
        _lay_out_work_folder(made, scans)
        with _archive_with_dicomweb(made, scans):
            yield made


def _lay_out_work_folder(world: World, scans: Path) -> None:
    work = world.cwd
    (work / "scans").mkdir(parents=True)
    files = sorted(scans.rglob("*.dcm"))
    for path in files:
        (work / "scans" / path.name).write_bytes(path.read_bytes())
    (work / "more.dcm").write_bytes(files[0].read_bytes())
    (work / "folder").mkdir()
    for path in files:
        if dcmread(path, stop_before_pixels=True).Modality == "MR":
            (work / "folder" / path.name).write_bytes(path.read_bytes())
    boundary = b"B"
    body = b"".join(b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n\r\n" + p.read_bytes()
                    + b"\r\n" for p in files[:3]) + b"--" + boundary + b"--\r\n"
    (work / "body").write_bytes(body)
    (work / "pacskit.toml").write_text(textwrap.dedent(f"""\
        ae_title = "PACSKIT"
        port = {world.port}

        [archive]
        data_dir = "{world.root / 'archive'}"
        fsync = false

        [web]
        port = {world.web_port}

        [nodes.pacs]
        ae_title = "{world.orthanc.ae_title}"
        host = "127.0.0.1"
        port = {world.orthanc.port}
        """))


@contextmanager
def _archive_with_dicomweb(world: World, scans: Path) -> Iterator[None]:
    """A ``pacskit serve`` holding the corpus, for the README's DICOMweb examples (its
    ``http://127.0.0.1:8080``)."""
    data, port = world.root / "web-archive", free_port()
    subprocess.run([sys.executable, "-m", "pacskit", "archive", "import", "--data-dir", str(data),
                    str(scans)], cwd=world.cwd, env=world.env(), check=True, capture_output=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "pacskit", "--port", str(port), "serve", "--data-dir", str(data),
         "--no-fsync", "--http-port", str(world.archive_web_port)],
        cwd=world.root, env=world.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _answers_http(world.archive_web_port):
            assert process.poll() is None, "pacskit serve for the DICOMweb examples stopped"
            assert time.monotonic() < deadline, "pacskit serve's DICOMweb did not start"
            time.sleep(0.2)
        yield
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def _answers_http(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/dicom-web/studies?limit=1", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _run(world: World, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=world.cwd, env=world.env(),
                          capture_output=True, text=True, timeout=180)


def _serve(world: World, command: str) -> subprocess.CompletedProcess[str]:
    """Start a long-running command, prove it answers a C-ECHO, stop it with Ctrl-C."""
    env = world.env()
    if command.startswith("make run"):
        env.update(PACSKIT_PORT=str(free_port()), PACSKIT_WEB__PORT=str(free_port()),
                   PACSKIT_ARCHIVE__DATA_DIR=str(world.root / "make-run-data"))
        port, cwd = int(env["PACSKIT_PORT"]), ROOT
    else:
        found = re.search(r"--port (\d+)", command)
        port, cwd = (int(found.group(1)) if found else world.port), world.cwd
    process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not echoscu("PACSKIT", "127.0.0.1", port):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"{command!r} did not answer a C-ECHO on {port}"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _output_folder(command: str) -> Path | None:
    found = re.search(r" -o (\S+)", command)
    return Path(found.group(1)) if found else None


def _assert_no_names(world: World, texts: list[str], folder: Path | None) -> None:
    for text in texts:
        for name in world.names:
            assert name not in text, f"a patient name ({name}) in the output:\n{text}"
    if folder is None or not folder.exists():
        return
    encoded = {n.encode("latin-1") for n in world.names} | {n.encode() for n in world.names}
    for path in folder.rglob("*"):
        assert not any(n in str(path) for n in world.names), path
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in encoded), f"a patient name in {path}"


COMMANDS = shell_commands()


@pytest.mark.parametrize(("line", "command"), COMMANDS, ids=[f"line{n}" for n, _ in COMMANDS])
def test_readme_command(world, line, command):
    if command in NOT_RUN:
        return
    command = world.substitute(command)
    out = _output_folder(command)
    folder = world.cwd / out if out is not None else None
    if folder is not None and folder.exists():
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    received_before = len(world.workstation.received())
    if command.startswith(LONG_RUNNING):
        result = _serve(world, command)
        interrupted = -signal.SIGINT if command.startswith("make") else 0  # make re-raises Ctrl-C
        assert result.returncode == interrupted, (command, result.returncode, result.stderr)
        assert "stopped" in result.stderr, result.stderr
    else:
        result = _run(world, command)
        assert result.returncode == 0, (f"README line {line}: {command}", result.returncode,
                                        result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    words = shlex.split(command)
    if words[:2] == ["pacskit", "find"]:
        assert "No matches" not in result.stdout + result.stderr, f"README line {line} finds nothing"
    if folder is not None:
        assert any(folder.rglob("*.dcm")), f"README line {line} wrote no file into {out}"
    if "--to WORKSTATION" in command:
        assert len(world.workstation.received()) > received_before
    if words[0] in ("pacskit", "make"):
        _assert_no_names(world, [result.stdout, result.stderr], folder)


def test_readme_lines_not_run_are_still_in_it():
    assert set(NOT_RUN) <= {command for _, command in COMMANDS}


def test_readme_settings_blocks_load(tmp_path):
    blocks = [b for b in readme_blocks() if b.language == "toml"]
    assert blocks
    for block in blocks:
        path = tmp_path / f"line{block.line}.toml"
        path.write_text(block.text)
        settings = Settings.load(path)
        assert settings.model_dump(), block.line


def test_readme_python_blocks_run(world):
    blocks = [b for b in readme_blocks() if b.language == "python"]
    assert blocks
    studies = [p for p in (world.cwd / "scans").glob("*.dcm")
               if dcmread(p, stop_before_pixels=True).SeriesInstanceUID == "1.2.3.4"]
    one = dcmread(studies[0], stop_before_pixels=True)
    for block in blocks:
        subprocess.run(["rm", "-rf", str(world.cwd / "out")], check=True)
        prelude = (f"study_uid, series_uid, sop_uid = {one.StudyInstanceUID!r}, "
                   f"{one.SeriesInstanceUID!r}, {one.SOPInstanceUID!r}\n")
        script = prelude + world.substitute(block.text)
        if "async def main" in script:
            script += "\nimport asyncio\nasyncio.run(main())\n"
        result = subprocess.run([sys.executable, "-c", script], cwd=world.cwd, env=world.env(),
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, (f"README python block at line {block.line}", result.stderr)
        assert any((world.cwd / "out").rglob("*.dcm"))
        _assert_no_names(world, [result.stdout, result.stderr], world.cwd / "out")
