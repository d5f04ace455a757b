"""Patient names hidden where a byte-level reader may not look — in UN sequences of
defined and undefined length, under a VR that makes pydicom quote the value, after the
pixel data, in a UN that cannot be read, in a big endian dataset — never reach a written
file or the command's output, whichever way they are retrieved: C-GET and C-MOVE to
ourselves from DCMTK dcmqrscp and from `pacskit serve` (which sends what it stores, byte
for byte), C-GET and WADO-RS from Orthanc (which keeps a UN as it was received; its C-GET,
through DCMTK, turns one of undefined length into a sequence), WADO-RS from `pacskit
serve`, and into memory. All the rest of each instance arrives."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pytest
from clirunner import run_cli
from pydicom import Dataset, dcmread
from pydicom.filereader import read_sequence
from pydicom.filewriter import dcmwrite

import pacskit.net.retrieve as net_retrieve
import pacskit.web.multipart as multipart
from pacskit import Client, Node, Settings
from pacskit.archive import Archive
from pacskit.archive.maintenance import import_files
from pacskit.privacy import PATIENT_NAME_TAGS
from pacskit.query import Query
from pacskit.settings import ArchiveSettings, NodeConfig, WebSettings
from pacskit.testing.hidden_names import NAME_MARKER, HiddenNames, craft_hidden_names
from pacskit.testing.peers import DcmQrSCP, Orthanc, free_port

OUR_AET = "PACSKIT"
ARCHIVE_AET = "ARCHIVE"
PATIENT = "HIDDEN01"
UNREADABLE_UN = 0x00091013
ROUTES = [("dcmqrscp", "get"), ("dcmqrscp", "move"), ("orthanc", "get"), ("orthanc", "wado-rs"),
          ("archive", "get"), ("archive", "move"), ("archive", "wado-rs")]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> list[HiddenNames]:
    return craft_hidden_names(tmp_path_factory.mktemp("hidden"), PATIENT)


@pytest.fixture(scope="module")
def our_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def holders(tmp_path_factory, crafted, our_port):
    """dcmqrscp, Orthanc and `pacskit serve`, each holding the crafted instances and
    knowing us as a C-MOVE destination."""
    files = [c.path for c in crafted]
    work = tmp_path_factory.mktemp("holders")
    settings = Settings(ae_title=ARCHIVE_AET, port=free_port(), bind_address="127.0.0.1",
                        nodes={OUR_AET: NodeConfig(ae_title=OUR_AET, host="127.0.0.1", port=our_port)},
                        archive=ArchiveSettings(data_dir=work / "archive", fsync=False),
                        web=WebSettings(port=free_port()))
    with (DcmQrSCP(work / "dcmqrscp", move_destinations={OUR_AET: ("127.0.0.1", our_port)}) as dcmqrscp,
          Orthanc(work / "orthanc") as orthanc, Archive(settings) as archive):
        archive.start()
        dcmqrscp.load(files)
        assert orthanc.load(files) == len(files)
        orthanc.add_modality("pacskit", OUR_AET, "127.0.0.1", our_port)
        assert not import_files(archive.ingest, files).failed
        archive_address = f"dicom://{ARCHIVE_AET}@127.0.0.1:{settings.port}"
        yield {
            ("dcmqrscp", "dimse"): dcmqrscp.address,
            ("orthanc", "dimse"): orthanc.address,
            ("orthanc", "web"): orthanc.dicomweb_url,
            ("archive", "dimse"): archive_address,
            ("archive", "web"): f"http://127.0.0.1:{settings.web.port}/dicom-web",
        }


def cli_args(holders: dict, holder: str, method: str, our_port: int) -> list[object]:
    if method == "wado-rs":
        return ["get", holders[(holder, "web")]]
    if method == "move":
        return ["--aet", OUR_AET, "--port", our_port, "get", holders[(holder, "dimse")], "--method", "move"]
    return ["get", holders[(holder, "dimse")]]


def node_of(address: str) -> Node:
    aet, rest = address.removeprefix("dicom://").split("@")
    host, port = rest.split(":")
    return Node(ae_title=aet, host=host, port=int(port))


def forbidden(crafted: list[HiddenNames]) -> set[bytes]:
    """Every name, and every part of one, in the encodings it may be written in."""
    found = {NAME_MARKER}
    for item in crafted:
        for name in item.names:
            text = name.decode("latin-1")
            for part in (text, *text.split("^")):
                found |= {part.encode("latin-1"), part.encode("utf-8")}
    return found


def leaves(dataset: Dataset, path: tuple[int, ...] = ()) -> dict[tuple[int, ...], object]:
    """Every element that is not a name, at any depth, by its path of tags, as a plain
    value: a UN that holds a sequence is read as one (Implicit VR Little Endian, PS3.5
    6.2.2), so that the same data compares equal however a peer re-encoded it."""
    found: dict[tuple[int, ...], object] = {}
    for tag in list(dataset.keys()):
        if tag in PATIENT_NAME_TAGS:
            continue
        element = dataset.get_item(tag)
        value = element.value
        items = None
        if element.VR == "SQ":
            items = list(dataset[tag].value)
        elif element.VR in ("UN", None) and isinstance(value, bytes) and value.startswith(b"\xfe\xff\x00\xe0"):
            try:
                items = list(read_sequence(BytesIO(value), True, True, len(value), "iso8859"))
            except (OSError, ValueError, EOFError):
                items = None
        if items is None:
            found[(*path, tag)] = plain(dataset, tag)
            continue
        for number, item in enumerate(items):
            found.update(leaves(item, (*path, tag, number)))
    return found


def plain(dataset: Dataset, tag: int) -> object:
    element = dataset.get_item(tag)
    if element.VR in ("UN", "OB", "OW", None):
        return bytes(element.value or b"").rstrip(b" \0")
    value = dataset[tag].value
    if isinstance(value, str):
        return value.encode("latin-1", "replace").strip()
    return value


def assert_nothing_but_names_lost(written: Dataset, original: HiddenNames) -> None:
    expected = leaves(dcmread(original.path))
    got = leaves(written)
    expected = {k: v for k, v in expected.items() if k[0] != UNREADABLE_UN}
    missing = {k: v for k, v in expected.items() if got.get(k) != v}
    assert not missing, (original.variant, missing)
    assert written.PixelData == original.pixel_data


def assert_withheld(out: Path, crafted: list[HiddenNames], text: str) -> None:
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".")], "temporary files left behind"
    bad = forbidden(crafted)
    for path in files:
        data = path.read_bytes()
        assert not [b for b in bad if b in data], path
    assert not [b for b in bad if b.decode("utf-8", "replace") in text], text
    by_uid = {c.sop_instance_uid: c for c in crafted}
    written = {str(dcmread(p).SOPInstanceUID): dcmread(p) for p in files}
    assert set(written) == set(by_uid)
    for uid, dataset in written.items():
        assert_nothing_but_names_lost(dataset, by_uid[uid])


@pytest.mark.parametrize("verbosity", ["-v", "-vv"])
@pytest.mark.parametrize(("holder", "method"), ROUTES)
def test_hidden_names_reach_no_file_and_no_output(holders, crafted, our_port, tmp_path, holder, method,
                                                  verbosity):
    out = tmp_path / "out"
    result = run_cli(verbosity, *cli_args(holders, holder, method, our_port), "-l", "patient", "-p", PATIENT,
                     "-o", out, "-f", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["written"] == len(crafted)
    assert_withheld(out, crafted, result.stdout + result.stderr)


@pytest.mark.parametrize(("holder", "method"), ROUTES)
def test_the_holders_send_the_names_they_were_given(holders, crafted, our_port, tmp_path, holder, method):
    """The control: with names allowed, every hidden name arrives — the test above is
    not passing because a peer dropped them."""
    out = tmp_path / "out"
    result = run_cli(*cli_args(holders, holder, method, our_port), "-l", "patient", "-p", PATIENT, "-o", out,
                     env={"PACSKIT_ALLOW_PATIENT_NAMES": "true"})
    assert result.returncode == 0, result.stderr
    by_uid = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p.read_bytes() for p in out.rglob("*.dcm")}
    for item in crafted:
        assert all(name in by_uid[item.sop_instance_uid] for name in item.names), item.variant


@pytest.mark.parametrize("holder", ["dcmqrscp", "archive"])
def test_instances_handed_back_in_memory_hold_no_name(holders, crafted, holder, recwarn):
    result = Client(Settings(allow_patient_names=False)).get(node_of(holders[(holder, "dimse")]),
                                    Query.build("patient", patient_id=PATIENT)).raise_for_status()
    by_uid = {c.sop_instance_uid: c for c in crafted}
    assert {str(ds.SOPInstanceUID) for ds in result.instances} == set(by_uid)
    bad = forbidden(crafted)
    for dataset in result.instances:
        buffer = BytesIO()
        dcmwrite(buffer, dataset, enforce_file_format=True)
        assert not [b for b in bad if b in buffer.getvalue()]
        assert_nothing_but_names_lost(dataset, by_uid[str(dataset.SOPInstanceUID)])
    assert not [w for w in recwarn if NAME_MARKER.decode() in str(w.message)]


@pytest.mark.parametrize(("holder", "method"), [("archive", "get"), ("archive", "move"), ("archive", "wado-rs"),
                                                ("dcmqrscp", "get")])
def test_spooled_instances_hold_no_name(holders, crafted, our_port, tmp_path, spools, monkeypatch, holder, method):
    monkeypatch.setattr(net_retrieve, "SPOOL_AFTER", 2048)
    monkeypatch.setattr(multipart, "SPOOL_AFTER", 2048)
    settings = Settings(ae_title=OUR_AET, port=our_port, allow_patient_names=False)
    web = method == "wado-rs"
    node = holders[(holder, "web")] if web else node_of(holders[(holder, "dimse")])
    result = Client(settings).get(node, Query.build("patient", patient_id=PATIENT), tmp_path / "out",
                                  method="get" if web else method).raise_for_status()
    assert result.written == len(crafted)
    assert spools, "nothing was spooled: the test would prove nothing"
    assert_withheld(tmp_path / "out", crafted, "")
