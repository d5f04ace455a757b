"""Keys inside sequences on ``pacskit find`` (PS3.4 C.2.2.2.6), through the real console
script against Orthanc: the dotted keyword path and findscu's ``(gggg,eeee)[0].Keyword``
form send the same one-item sequence; Orthanc returns the sequence but does not match on
it, and pacskit drops the answers whose items do not match."""

from __future__ import annotations

import json

import pytest
from clirunner import assert_one_line_error, run_cli
from pydicom import Dataset, dcmread

from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import Orthanc

CODES = {"CT THORAX": "XYZ", "MR BRAIN": "ABC"}


@pytest.fixture(scope="module")
def coded_orthanc(tmp_path_factory):
    """Orthanc holding two studies, each with a ProcedureCodeSequence of its own code."""
    corpus = generate_corpus(tmp_path_factory.mktemp("coded"), patients=1, studies_per_patient=2,
                             series_per_study=1, instances_per_series=1, seed=3)
    for instance in corpus:
        ds = dcmread(instance.path)
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = CODES[ds.StudyDescription], "L", "exam"
        ds.ProcedureCodeSequence = [code]
        ds.save_as(instance.path)
    with Orthanc(tmp_path_factory.mktemp("orthanc-coded")) as peer:
        peer.load([c.path for c in corpus])
        yield peer


@pytest.mark.parametrize("key", ["ProcedureCodeSequence.CodeValue=XYZ", "(0008,1032)[0].CodeValue=XYZ",
                                 "00081032[0].00080100=XYZ"])
def test_a_key_inside_a_sequence_finds_only_the_matching_study(coded_orthanc, key):
    result = run_cli("find", coded_orthanc.address, "-k", key, "-f", "json")
    assert result.returncode == 0, result.stderr
    matches = json.loads(result.stdout)
    assert [m["StudyDescription"] for m in matches] == ["CT THORAX"]
    assert matches[0]["ProcedureCodeSequence"][0]["CodeValue"] == "XYZ"
    assert "1 of 2 study answers dropped: the PACS ignored ProcedureCodeSequence" in result.stderr


def test_a_sequence_return_key_brings_the_items_back(coded_orthanc):
    result = run_cli("find", coded_orthanc.address, "-k", "ProcedureCodeSequence.CodeValue", "-f", "json")
    assert result.returncode == 0, result.stderr
    codes = {m["StudyDescription"]: m["ProcedureCodeSequence"][0]["CodeValue"] for m in json.loads(result.stdout)}
    assert codes == CODES


@pytest.mark.parametrize(("key", "text"), [
    ("ProcedureCodeSequence[1].CodeValue=XYZ", "one item"),
    ("StudyDate.CodeValue=XYZ", "StudyDate is not a sequence"),
    ("ProcedureCodeSequence=XYZ", "is a sequence"),
])
def test_a_malformed_sequence_key_is_refused_before_any_association(key, text):
    assert_one_line_error(run_cli("find", "dicom://PEER@127.0.0.1:1", "-k", key), 6, text)
