"""A list of UIDs on the command line — ``A\\B`` or ``A,B`` — finds and retrieves every one
of them: as a comma-separated QIDO-RS parameter (PS3.18 8.3.4.1) from Orthanc's DICOMweb
plugin and from `pacskit serve`, and as a backslash-separated C-FIND/C-GET value (PS3.4
C.2.2.2.2) from DCMTK dcmqrscp."""

from __future__ import annotations

import json

import httpx
import pytest
from clirunner import run_cli
from served import served_archive, web_url

SEPARATORS = {"backslash": "\\", "comma": ",", "comma-space": ", "}


@pytest.fixture(scope="module")
def archive(tmp_path_factory, corpus):
    with served_archive(tmp_path_factory.mktemp("uid-lists"), [c.path for c in corpus]) as served:
        yield served


@pytest.fixture(params=["orthanc", "pacskit"])
def web_peer(request, orthanc, archive):
    """The DICOMweb root of a server holding the corpus."""
    return orthanc.dicomweb_url if request.param == "orthanc" else web_url(archive)


def two_studies(corpus):
    """Two studies of different patients, and all the instances of each."""
    first, last = corpus[0].study_uid, corpus[-1].study_uid
    return [first, last], {c.sop_instance_uid for c in corpus if c.study_uid in (first, last)}


def found(result, tag):
    assert result.returncode == 0, result.stderr
    return {m[tag]["Value"][0] for m in json.loads(result.stdout)}


def received(folder):
    return {p.stem for p in folder.rglob("*.dcm")}


@pytest.mark.parametrize("separator", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_find_and_get_a_study_uid_list_over_dicomweb(web_peer, corpus, tmp_path, separator):
    studies, instances = two_studies(corpus)
    listed = separator.join(studies)
    assert found(run_cli("find", web_peer, "--study-uid", listed, "-f", "dicom-json"), "0020000D") == set(studies)
    got = run_cli("get", web_peer, "--study-uid", listed, "-o", tmp_path)
    assert got.returncode == 0, got.stderr
    assert received(tmp_path) == instances


def test_find_and_get_a_series_uid_list_over_dicomweb(web_peer, corpus, tmp_path):
    series = [corpus[0].series_uid, corpus[-1].series_uid]
    listed = ",".join(series)
    result = run_cli("find", web_peer, "-l", "series", "--series-uid", listed, "-f", "dicom-json")
    assert found(result, "0020000E") == set(series)
    got = run_cli("get", web_peer, "-l", "series", "--series-uid", listed, "-o", tmp_path)
    assert got.returncode == 0, got.stderr
    assert received(tmp_path) == {c.sop_instance_uid for c in corpus if c.series_uid in series}


@pytest.mark.parametrize("separator", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_find_and_get_a_study_uid_list_over_dimse(dcmqrscp, corpus, tmp_path, separator):
    studies, instances = two_studies(corpus)
    listed = separator.join(studies)
    assert found(run_cli("find", dcmqrscp.address, "--study-uid", listed, "-f", "dicom-json"), "0020000D") == set(studies)
    got = run_cli("get", dcmqrscp.address, "--study-uid", listed, "-o", tmp_path)
    assert got.returncode == 0, got.stderr
    assert received(tmp_path) == instances


def test_repeated_uid_keys_add_to_the_list(dcmqrscp, corpus):
    studies, _ = two_studies(corpus)
    result = run_cli("find", dcmqrscp.address, "--study-uid", studies[0], "-k", f"StudyInstanceUID={studies[1]}",
                     "-f", "dicom-json")
    assert found(result, "0020000D") == set(studies)


def test_pacskit_serve_reads_comma_and_backslash_uid_lists(archive, corpus):
    studies, _ = two_studies(corpus)
    for value in (",".join(studies), "\\".join(studies), ", ".join(studies)):
        response = httpx.get(f"{web_url(archive)}/studies", params={"StudyInstanceUID": value})
        assert response.status_code == 200
        assert {r["0020000D"]["Value"][0] for r in response.json()} == set(studies), value
