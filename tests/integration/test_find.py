"""C-FIND against DCMTK dcmqrscp and Orthanc holding the same corpus: every case a user
asks for, compared with what the corpus says the answer is."""

from __future__ import annotations

import csv
import io
import json
import logging

import pytest
from clirunner import assert_one_line_error, run_cli
from proxy import RecordingProxy
from pydicom.datadict import tag_for_keyword

from pacskit import Client, Node, Settings
from pacskit.query import Query

PATIENT_NAME_TAG = b"\x10\x00\x10\x00"  # (0010,0010) little endian


@pytest.fixture(params=["dcmqrscp", "orthanc"])
def peer(request):
    return request.getfixturevalue(request.param)


def unique(corpus, key, **where):
    return {getattr(c, key) for c in corpus if all(getattr(c, k) == v for k, v in where.items())}


def cases(corpus):
    p0, p1 = sorted(unique(corpus, "patient_id"))
    study = sorted(unique(corpus, "study_uid", patient_id=p0))[0]
    series = sorted(unique(corpus, "series_uid", study_uid=study))[0]
    dates = sorted(unique(corpus, "study_date"))
    date_range = f"{dates[0]}-{dates[1]}"
    in_range = {c.study_uid for c in corpus if dates[0] <= c.study_date <= dates[1]}
    return {
        "all-patients": (["-l", "patient"], "PatientID", {p0, p1}),
        "one-patient": (["-l", "patient", "-p", p0], "PatientID", {p0}),
        "all-studies": ([], "StudyInstanceUID", unique(corpus, "study_uid")),
        "one-study": (["--study-uid", study], "StudyInstanceUID", {study}),
        "studies-of-patient": (["-p", p1], "StudyInstanceUID", unique(corpus, "study_uid", patient_id=p1)),
        "all-series": (["-l", "series"], "SeriesInstanceUID", unique(corpus, "series_uid")),
        "one-series": (["-l", "series", "--study-uid", study, "--series-uid", series],
                       "SeriesInstanceUID", {series}),
        "series-of-patient": (["-l", "series", "-p", p0], "SeriesInstanceUID",
                              unique(corpus, "series_uid", patient_id=p0)),
        "series-of-study": (["-l", "series", "--study-uid", study], "SeriesInstanceUID",
                            unique(corpus, "series_uid", study_uid=study)),
        "series-of-patient-and-study": (["-l", "series", "-p", p0, "--study-uid", study],
                                        "SeriesInstanceUID", unique(corpus, "series_uid", study_uid=study)),
        "images-of-series": (["-l", "image", "--study-uid", study, "--series-uid", series],
                             "SOPInstanceUID", unique(corpus, "sop_instance_uid", series_uid=series)),
        "date-range": (["--date", date_range], "StudyInstanceUID", in_range),
        "wildcard": (["-p", p1[:-2] + "*"], "StudyInstanceUID", unique(corpus, "study_uid")),
        "wildcard-question": (["-p", p1[:-1] + "?"], "StudyInstanceUID", unique(corpus, "study_uid")),
        "modality": (["-l", "series", "--modality", "CT"], "SeriesInstanceUID",
                     unique(corpus, "series_uid", modality="CT")),
    }


CASES = ["all-patients", "one-patient", "all-studies", "one-study", "studies-of-patient",
         "all-series", "one-series", "series-of-patient", "series-of-study",
         "series-of-patient-and-study", "images-of-series", "date-range", "wildcard",
         "wildcard-question", "modality"]


@pytest.mark.parametrize("case", CASES)
def test_find_cases_return_what_the_corpus_holds(peer, corpus, case):
    args, key, expected = cases(corpus)[case]
    result = run_cli("find", peer.address, *args, "--format", "dicom-json")
    assert result.returncode == 0, result.stderr
    hex_tag = f"{tag_for_keyword(key):08X}"
    found = {m[hex_tag]["Value"][0] for m in json.loads(result.stdout) if "Value" in m.get(hex_tag, {})}
    assert found == expected


def test_no_match_is_not_an_error(peer):
    result = run_cli("find", peer.address, "-p", "NO_SUCH_PATIENT")
    assert result.returncode == 0
    assert "No matches" in result.stderr


def test_table_and_csv_outputs(orthanc, corpus):
    piped = run_cli("find", orthanc.address, "-l", "series")
    assert piped.returncode == 0
    series = list(csv.DictReader(io.StringIO(piped.stdout), delimiter="\t"))
    assert len(series) == 8 and {r["Modality"] for r in series} <= {"CT", "MR", "US", "CR"}
    rows = list(csv.DictReader(io.StringIO(run_cli("find", orthanc.address, "-f", "csv").stdout)))
    assert {r["StudyInstanceUID"] for r in rows} == unique(corpus, "study_uid")
    assert {r["NumberOfStudyRelatedInstances"] for r in rows} == {"6"}


def test_limit_cancels_after_n_matches(peer):
    result = run_cli("find", peer.address, "-l", "series", "--limit", "3", "-f", "dicom-json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 3
    # the association is still usable afterwards: the peer was cancelled, not aborted
    assert run_cli("echo", peer.address).returncode == 0


def test_raw_keys_match_and_return(orthanc, corpus):
    study = sorted(unique(corpus, "study_uid"))[0]
    result = run_cli("find", orthanc.address, "-k", f"StudyInstanceUID={study}",
                     "-k", "InstitutionName", "-f", "json")
    [match] = json.loads(result.stdout)
    assert match["InstitutionName"] == "pacskit synthetic hospital"


def test_library_find_sync(orthanc, corpus):
    client = Client(Settings())
    node = Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port)
    studies = client.find(node, Query.build("study"))
    assert {s.StudyInstanceUID for s in studies} == unique(corpus, "study_uid")
    assert all("PatientName" not in s for s in studies)


def test_names_are_never_requested_shown_or_logged(orthanc, caplog):
    proxy = RecordingProxy(orthanc.host, orthanc.port)
    try:
        via_proxy = f"dicom://{orthanc.ae_title}@127.0.0.1:{proxy.port}"
        caplog.set_level(logging.DEBUG)
        client = Client(Settings())
        for level in ("patient", "study", "series", "image"):
            for match in client.find(via_proxy, Query.build(level)):
                assert "PatientName" not in match
        cli = run_cli("-vv", "find", via_proxy, "-l", "patient", "-f", "dicom-json")
        assert cli.returncode == 0, cli.stderr
    finally:
        proxy.close()
    assert proxy.sent, "the proxy saw no traffic"
    assert PATIENT_NAME_TAG not in bytes(proxy.sent)
    for name in ("Doe", "Müller", "Smith", "García", "Dupont", "Rossi", "Novak", "Jansen"):
        assert name not in cli.stdout and name not in cli.stderr
        assert name not in caplog.text


def test_names_with_the_explicit_opt_in(orthanc):
    result = run_cli("find", orthanc.address, "-l", "patient", "-f", "dicom-json",
                     env={"PACSKIT_ALLOW_PATIENT_NAMES": "true"})
    names = [m["00100010"]["Value"][0]["Alphabetic"] for m in json.loads(result.stdout)]
    assert len(names) == 2 and all("^" in n for n in names)


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["-l", "study", "-k", "Modality=CT"], 6, "not a key of the STUDY level"),
        (["-k", "NotAKeyword=1"], 6, "unknown keyword"),
        (["--date", "2024-01-01"], 6, "not a valid DA"),
        (["-l", "planet"], 6, "unknown level"),
        (["-l", "patient", "-k", "PatientName=D*"], 6, "allow_patient_names"),
    ],
)
def test_bad_queries_fail_before_any_network(args, code, text):
    assert_one_line_error(run_cli("find", "dicom://NOBODY@127.0.0.1:1", *args), code, text)
