"""A patient name never reaches a path: a layout with a name field is refused — exit 2,
one line, nothing retrieved, no folder created — on every way pacskit writes retrieved
instances (C-GET from dcmqrscp, C-MOVE to ourselves from Orthanc, WADO-RS and WADO-URI
from Orthanc and from `pacskit serve`, `archive export`, the library), works once names
are allowed, and a normal retrieve on each of them writes no name into any path or file."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirunner import assert_one_line_error, run_cli
from proxy import RecordingProxy

from pacskit import Client, Node, Settings
from pacskit.archive import Archive
from pacskit.archive.maintenance import import_files
from pacskit.errors import UsageError
from pacskit.privacy import PATIENT_NAME_KEYWORDS
from pacskit.query import Query
from pacskit.settings import ArchiveSettings, WebSettings
from pacskit.testing.corpus import CorpusInstance, generate_corpus
from pacskit.testing.peers import DcmQrSCP, Orthanc, free_port

OUR_AET = "PACSKIT"
NAMES = ("Doe^John", "Müller^Anna")
FOLDERS = {"Doe^John", "M_ller^Anna"}
ROUTES = ["c-get", "c-move", "wado-rs", "wado-uri", "serve-wado-rs", "serve-wado-uri", "archive-export"]


def name_layouts(rotation: int) -> list[str]:
    """A layout for each name keyword, every other one with a format spec (which ones
    turns with ``rotation``, so that across routes each keyword is tried both ways)."""
    return [f"{{StudyDate}}/{{{keyword}:>12}}/{{InstanceNumber:03d}}.dcm" if (number + rotation) % 2
            else f"{{{keyword}}}/{{SOPInstanceUID}}.dcm"
            for number, keyword in enumerate(PATIENT_NAME_KEYWORDS)]


NAME_LAYOUTS = name_layouts(0) + name_layouts(1)
EVERYONE = ["-l", "patient", "-p", "*"]


@pytest.fixture(scope="module")
def named(tmp_path_factory) -> list[CorpusInstance]:
    """Two patients, Doe^John and Müller^Anna (ISO_IR 100), two instances each."""
    made = generate_corpus(tmp_path_factory.mktemp("named"), patients=2, studies_per_patient=1,
                           series_per_study=1, instances_per_series=2, seed=0)
    return made


@pytest.fixture(scope="module")
def our_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def peers(tmp_path_factory, named, our_port):
    """dcmqrscp, Orthanc (DIMSE and DICOMweb) and `pacskit serve` (DICOMweb, and its
    folder for `archive export`), each holding the named corpus."""
    files = [item.path for item in named]
    work = tmp_path_factory.mktemp("peers")
    settings = Settings(ae_title="ARCHIVE", port=free_port(), bind_address="127.0.0.1",
                        archive=ArchiveSettings(data_dir=work / "archive", fsync=False),
                        web=WebSettings(port=free_port()))
    with DcmQrSCP(work / "dcmqrscp") as dcmqrscp, Orthanc(work / "orthanc") as orthanc, \
            Archive(settings) as archive:
        archive.start()
        dcmqrscp.load(files)
        orthanc.load(files)
        orthanc.add_modality("pacskit", OUR_AET, "127.0.0.1", our_port)
        assert not import_files(archive.ingest, files).failed
        yield {"dcmqrscp": dcmqrscp, "orthanc": orthanc, "serve": settings}


def upstream(peers: dict, route: str) -> tuple[str, int]:
    """The host and port the route connects to."""
    if route == "c-get":
        return "127.0.0.1", peers["dcmqrscp"].port
    if route == "c-move":
        return "127.0.0.1", peers["orthanc"].port
    if route.startswith("serve-"):
        return "127.0.0.1", peers["serve"].web.port
    return "127.0.0.1", peers["orthanc"].http_port


def cli_args(peers: dict, route: str, port: int, our_port: int) -> list[object]:
    """The command for ``route``, reaching its peer through ``port``."""
    if route == "archive-export":
        return ["archive", "export", "--data-dir", peers["serve"].archive.data_dir]
    if route == "c-get":
        return ["get", f"dicom://{peers['dcmqrscp'].ae_title}@127.0.0.1:{port}"]
    if route == "c-move":
        return ["--aet", OUR_AET, "--port", our_port, "get", f"dicom://{peers['orthanc'].ae_title}@127.0.0.1:{port}",
                "--method", "move"]
    root = f"http://127.0.0.1:{port}/dicom-web"
    return ["get", root, *(["--wado-uri"] if route.endswith("wado-uri") else [])]


def forbidden() -> set[bytes]:
    found = set()
    for name in NAMES:
        for part in (name, *name.split("^"), name.replace("ü", "_")):
            found |= {part.encode("latin-1"), part.encode("utf-8")}
    return found


def written_under(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


@pytest.mark.parametrize("route", ROUTES)
def test_a_name_in_the_layout_is_refused_before_anything_is_retrieved(peers, our_port, tmp_path, route):
    proxy = RecordingProxy(*upstream(peers, route))
    try:
        for number, layout in enumerate(name_layouts(ROUTES.index(route))):
            out = tmp_path / f"out{number}"
            result = run_cli(*cli_args(peers, route, proxy.port, our_port), *EVERYONE, "-o", out,
                             "--layout", layout)
            keyword = next(k for k in PATIENT_NAME_KEYWORDS if f"{{{k}" in layout)
            assert_one_line_error(result, 2, f"{{{keyword}}} is a patient name")
            assert not out.exists(), layout
    finally:
        proxy.close()
    assert (bytes(proxy.sent), proxy.received) == (b"", 0), "something was asked of the peer"


@pytest.mark.parametrize("route", ROUTES)
def test_with_names_allowed_the_name_layout_works(peers, named, our_port, tmp_path, route):
    result = run_cli(*cli_args(peers, route, upstream(peers, route)[1], our_port), *EVERYONE, "-o", tmp_path,
                     "--layout", "{PatientName}/{SOPInstanceUID}.dcm", env={"PACSKIT_ALLOW_PATIENT_NAMES": "true"})
    assert result.returncode == 0, result.stderr
    assert {p.name for p in tmp_path.iterdir()} == FOLDERS
    assert {p.stem for p in tmp_path.rglob("*.dcm")} == {item.sop_instance_uid for item in named}


@pytest.mark.parametrize("route", ROUTES)
def test_a_retrieve_writes_no_name_into_any_path_or_byte(peers, named, our_port, tmp_path, route):
    result = run_cli("-vv", *cli_args(peers, route, upstream(peers, route)[1], our_port), *EVERYONE, "-o", tmp_path,
                     "--layout", "{PatientID}/{StudyDate}/{Modality}/{InstanceNumber:03d}-{SOPInstanceUID}.dcm")
    assert result.returncode == 0, result.stderr
    files = [p for p in written_under(tmp_path) if p.is_file()]
    assert {p.name.split("-", 1)[1][:-4] for p in files} == {item.sop_instance_uid for item in named}
    bad = forbidden()
    for path in written_under(tmp_path):
        relative = path.relative_to(tmp_path).as_posix().encode()
        assert not [b for b in bad if b in relative], relative
    for path in files:
        assert not [b for b in bad if b in path.read_bytes()], path
    output = (result.stdout + result.stderr).encode()
    assert not [b for b in bad if b in output]


def test_the_library_refuses_a_name_layout_and_writes_it_when_allowed(peers, named, tmp_path):
    dcmqrscp = peers["dcmqrscp"]
    proxy = RecordingProxy("127.0.0.1", dcmqrscp.port)
    query = Query.build("patient", patient_id="*")
    try:
        node = Node(ae_title=dcmqrscp.ae_title, host="127.0.0.1", port=proxy.port)
        for number, layout in enumerate(NAME_LAYOUTS):
            with pytest.raises(UsageError, match="is a patient name"):
                Client(Settings(allow_patient_names=False)).get(node, query, tmp_path / f"out{number}", layout=layout)
            assert not (tmp_path / f"out{number}").exists()
    finally:
        proxy.close()
    assert (bytes(proxy.sent), proxy.received) == (b"", 0)
    node = Node(ae_title=dcmqrscp.ae_title, host="127.0.0.1", port=dcmqrscp.port)
    Client(Settings(allow_patient_names=True)).get(node, query, tmp_path / "allowed",
                                                   layout="{PatientName}/{SOPInstanceUID}.dcm").raise_for_status()
    assert {p.name for p in (tmp_path / "allowed").iterdir()} == FOLDERS
