"""De-identification against real peers: ``get --deidentify`` and ``find --deidentify``
from Orthanc (C-GET, C-FIND), the per-node setting, a missing secret, and the cross-check
of the Basic Profile against Orthanc's own ``/instances/{id}/anonymize``."""

from __future__ import annotations

import json
import re
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from clirunner import assert_one_line_error, run_cli
from pydicom import Dataset, dcmread, dcmwrite

from pacskit.deid import Deidentifier, load_table
from pacskit.testing.deid_compare import outcomes
from pacskit.testing.deid_corpus import Marker, marker_instance
from pacskit.testing.peers import Orthanc

SECRET = "integration secret"
DOC = Path(__file__).resolve().parents[2] / "docs" / "deidentification.md"
ORTHANC_PROFILE = {"Force": True, "DicomVersion": "2021b"}
SECOND_UID = "1.2.826.0.1.3680043.10.999.2"


def encoded(dataset: Dataset) -> bytes:
    buffer = BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def instances() -> tuple[bytes, bytes, list[Marker]]:
    """The marker instance, and a second one of its study whose Referenced Image
    Sequence points at the first."""
    first, markers = marker_instance()
    second, _ = marker_instance()
    second.SOPInstanceUID = second.file_meta.MediaStorageSOPInstanceUID = SECOND_UID
    second.ReferencedImageSequence[0].ReferencedSOPInstanceUID = first.SOPInstanceUID
    return encoded(first), encoded(second), markers


@pytest.fixture(scope="module")
def marker_orthanc(tmp_path_factory, instances):
    with Orthanc(tmp_path_factory.mktemp("orthanc-deid")) as peer:
        for data in instances[:2]:
            assert httpx.post(f"{peer.url}/instances", content=data, timeout=30).status_code == 200
        yield peer


def address(peer: Orthanc) -> str:
    return f"dicom://{peer.ae_title}@{peer.host}:{peer.port}"


def test_get_deidentified_leaves_no_marker_and_find_gives_the_same_uids(marker_orthanc, instances, tmp_path):
    first = dcmread(BytesIO(instances[0]))
    out = tmp_path / "out"
    env = {"PACSKIT_DEIDENTIFY__SECRET": SECRET}
    got = run_cli("get", address(marker_orthanc), "--study-uid", first.StudyInstanceUID, "-o", out,
                  "--deidentify", env=env)
    assert got.returncode == 0, got.stderr
    files = sorted(p for p in out.rglob("*.dcm"))
    assert len(files) == 2
    markers = instances[2]
    for path in files:
        data = path.read_bytes()
        assert [m for m in markers if len(m.text) >= 6 and m.text in data] == []
        assert not any(m.text.decode(errors="ignore") in str(path) for m in markers if len(m.text) >= 6)
    written = {dcmread(p).SOPInstanceUID: dcmread(p) for p in files}
    pseudonyms = Deidentifier(SECRET.encode()).pseudonyms
    assert set(written) == {pseudonyms.uid(first.SOPInstanceUID), pseudonyms.uid(SECOND_UID)}
    second = written[pseudonyms.uid(SECOND_UID)]
    assert second.ReferencedImageSequence[0].ReferencedSOPInstanceUID == pseudonyms.uid(first.SOPInstanceUID)
    assert all(d.PatientIdentityRemoved == "YES" and d.PixelData == first.PixelData for d in written.values())

    found = run_cli("find", address(marker_orthanc), "--level", "image", "--study-uid", first.StudyInstanceUID,
                    "--deidentify", "--format", "json", "-k", "PatientID", env=env)
    assert found.returncode == 0, found.stderr
    matches = json.loads(found.stdout)
    assert {m["SOPInstanceUID"] for m in matches} == set(written)
    assert {m["StudyInstanceUID"] for m in matches} == {second.StudyInstanceUID}
    assert {m["PatientID"] for m in matches} == {second.PatientID} != {first.PatientID}


def test_a_node_configured_to_deidentify_always_does(marker_orthanc, instances, tmp_path):
    first = dcmread(BytesIO(instances[0]))
    (tmp_path / "secret").write_text(SECRET + "\n")
    (tmp_path / "pacskit.toml").write_text(
        f'[deidentify]\nsecret_file = "{tmp_path / "secret"}"\noptions = ["retain-modified-dates"]\n\n'
        f'[nodes.research]\nae_title = "{marker_orthanc.ae_title}"\nhost = "{marker_orthanc.host}"\n'
        f'port = {marker_orthanc.port}\ndeidentify = true\n')
    got = run_cli("get", "research", "--level", "image", "--study-uid", first.StudyInstanceUID,
                  "--sop-uid", first.SOPInstanceUID, "-o", tmp_path / "out", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    [path] = list((tmp_path / "out").rglob("*.dcm"))
    written = dcmread(path)
    deid = Deidentifier(SECRET.encode())
    assert written.SOPInstanceUID == deid.pseudonyms.uid(first.SOPInstanceUID)
    assert written.LongitudinalTemporalInformationModified == "MODIFIED"
    assert [c.CodeValue for c in written.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    assert written.StudyDate != first.StudyDate and len(written.StudyDate) == 8


def test_without_a_secret_nothing_is_retrieved_or_written(marker_orthanc, instances, tmp_path):
    first = dcmread(BytesIO(instances[0]))
    out = tmp_path / "out"
    for flags in (["--deidentify"], ["--deid-option", "retain-uids,clean-descriptors"]):
        result = run_cli("get", address(marker_orthanc), "--study-uid", first.StudyInstanceUID, "-o", out, *flags)
        assert_one_line_error(result, 8, "de-identification needs a secret")
        assert not out.exists()
    result = run_cli("find", address(marker_orthanc), "--deidentify")
    assert_one_line_error(result, 8, "PACSKIT_DEIDENTIFY__SECRET")
    result = run_cli("get", address(marker_orthanc), "--study-uid", first.StudyInstanceUID, "-o", out,
                     "--deid-option", "retain-all", env={"PACSKIT_DEIDENTIFY__SECRET": SECRET})
    assert_one_line_error(result, 2, "unknown de-identification option 'retain-all'")


def documented_differences() -> set[tuple[str, str, str]]:
    """The rows of the table under "Differences from Orthanc" in docs/deidentification.md,
    each with a reason."""
    text = DOC.read_text(encoding="utf-8").split("## Differences from Orthanc", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"\([0-9A-FX]{4},[0-9A-FX]{4}\)", cells[0]):
            assert cells[4], f"no reason for {cells[0]}"
            rows.add((cells[0], cells[2], cells[3]))
    return rows


def test_the_basic_profile_differs_from_orthancs_exactly_as_documented(marker_orthanc, instances):
    data, _, markers = instances
    before = dcmread(BytesIO(data))
    with httpx.Client(base_url=marker_orthanc.url, timeout=60) as client:
        orthanc_id = client.post("/tools/lookup", content=before.SOPInstanceUID).json()[0]["ID"]
        response = client.post(f"/instances/{orthanc_id}/anonymize", json=ORTHANC_PROFILE)
    assert response.status_code == 200
    theirs = dcmread(BytesIO(response.content))
    ours = Deidentifier(SECRET.encode())(dcmread(BytesIO(data)))
    mine, orthancs = outcomes(before, ours, markers), outcomes(before, theirs, markers)
    assert len(mine) == len({r.tag for r in load_table().rows}) - 5  # groups 0000, 0002, 0004 and private
    differences = {(tag, mine[tag], orthancs[tag]) for tag in mine if mine[tag] != orthancs[tag]}
    assert differences == documented_differences()
    assert theirs.PatientIdentityRemoved == ours.PatientIdentityRemoved == "YES"
    assert not any(e.tag.is_private for e in theirs.iterall()) and not any(e.tag.is_private for e in ours.iterall())
