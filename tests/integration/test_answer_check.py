"""Answers a PACS returns for keys it ignored are checked against the query: DCMTK
dcmqrscp ignores ModalitiesInStudy and InstitutionName at the study level (and returns
neither), Orthanc matches both (the control); a scripted C-FIND SCP and a scripted
QIDO-RS server ignore every key but return the values. Wrong answers are dropped and
counted, answers that cannot be checked are kept and counted, `get` retrieves only what
stays, and the counts go to standard error, never into the JSON or CSV on standard
output."""

from __future__ import annotations

import csv
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from clirunner import run_cli
from pydicom import Dataset, dcmread
from pynetdicom import AE, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from pacskit import Client, Node, Settings
from pacskit.query import Query
from pacskit.testing.peers import LOOPBACK, DcmQrSCP, free_port

STUDY_TAG = "0020000D"
HOSPITAL = "pacskit synthetic hospital"


@pytest.fixture(params=["dcmqrscp", "orthanc"])
def peer(request):
    return request.param, request.getfixturevalue(request.param)


def studies_with(corpus, modality):
    return {c.study_uid for c in corpus if c.modality == modality}


def instances_of(corpus, studies):
    return {c.sop_instance_uid for c in corpus if c.study_uid in studies}


def listed(result) -> set[str]:
    assert result.returncode == 0, result.stderr
    return {m[STUDY_TAG]["Value"][0] for m in json.loads(result.stdout)}


def check_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if " answers " in line or " answer " in line]


def received(folder) -> set[str]:
    return {p.stem for p in folder.rglob("*.dcm")}


def test_find_by_modality_drops_the_studies_the_pacs_did_not_match(peer, corpus):
    name, server = peer
    studies = {c.study_uid for c in corpus}
    with_mr = studies_with(corpus, "MR")
    assert 0 < len(with_mr) < len(studies), "the corpus must have studies with and without MR"
    result = run_cli("find", server.address, "-p", "PAT07*", "--modality", "MR", "-f", "dicom-json")
    assert listed(result) == with_mr
    dropped = len(studies) - len(with_mr)
    expected = [f"{dropped} of {len(studies)} study answers dropped: the PACS ignored ModalitiesInStudy"]
    assert check_lines(result) == (expected if name == "dcmqrscp" else [])
    modalities = {m[STUDY_TAG]["Value"][0]: m["00080061"]["Value"] for m in json.loads(result.stdout)}
    assert all("MR" in values for values in modalities.values())


def test_the_count_goes_to_stderr_in_every_format(dcmqrscp, corpus):
    with_mr = studies_with(corpus, "MR")
    message = "study answers dropped: the PACS ignored ModalitiesInStudy"
    as_csv = run_cli("find", dcmqrscp.address, "--modality", "MR", "-f", "csv")
    assert {row["StudyInstanceUID"] for row in csv.DictReader(io.StringIO(as_csv.stdout))} == with_mr
    table = run_cli("find", dcmqrscp.address, "--modality", "MR")
    piped = csv.DictReader(io.StringIO(table.stdout), delimiter="\t")
    assert {row["StudyInstanceUID"] for row in piped} == with_mr
    for result in (as_csv, table):
        assert result.returncode == 0 and message in result.stderr and message not in result.stdout
    nothing = run_cli("find", dcmqrscp.address, "--modality", "XA", "-f", "dicom-json")
    assert json.loads(nothing.stdout) == []
    assert "4 of 4 study answers dropped: the PACS ignored ModalitiesInStudy" in nothing.stderr


def test_get_by_modality_retrieves_only_the_studies_that_match(peer, corpus, tmp_path):
    name, server = peer
    with_mr = studies_with(corpus, "MR")
    result = run_cli("get", server.address, "--modality", "MR", "-o", tmp_path, "-f", "json")
    assert result.returncode == 0, result.stderr
    assert received(tmp_path) == instances_of(corpus, with_mr)
    summary = json.loads(result.stdout)
    dropped = len({c.study_uid for c in corpus}) - len(with_mr)
    assert summary["requests"] == len(with_mr)
    assert summary["check"]["dropped"] == (dropped if name == "dcmqrscp" else 0)
    assert bool(check_lines(result)) == (name == "dcmqrscp")


@pytest.mark.parametrize("institution", [HOSPITAL, "nowhere"])
def test_a_key_the_pacs_does_not_return_is_kept_unverified(peer, corpus, tmp_path, institution):
    name, server = peer
    studies = {c.study_uid for c in corpus}
    found = run_cli("find", server.address, "-k", f"InstitutionName={institution}", "-f", "dicom-json")
    got = run_cli("get", server.address, "-k", f"InstitutionName={institution}", "-o", tmp_path)
    assert got.returncode == 0, got.stderr
    if name == "orthanc":
        expected = studies if institution == HOSPITAL else set()
        assert listed(found) == expected and check_lines(found) == [] and check_lines(got) == []
        assert received(tmp_path) == instances_of(corpus, expected)
        return
    unverified = (f"{len(studies)} of {len(studies)} study answers kept unverified: "
                  "the PACS returned no InstitutionName to check them against")
    assert listed(found) == studies
    assert check_lines(found) == [unverified] and check_lines(got) == [unverified]
    assert received(tmp_path) == instances_of(corpus, studies)


def test_the_library_sees_the_check(dcmqrscp, orthanc, corpus):
    client = Client(Settings())
    node = Node(ae_title=dcmqrscp.ae_title, host=dcmqrscp.host, port=dcmqrscp.port)
    query = Query.build("study", modality="MR")
    matches = client.find(node, query)
    studies = len({c.study_uid for c in corpus})
    assert {m.StudyInstanceUID for m in matches} == studies_with(corpus, "MR")
    check = matches.check
    assert (check.answers, check.dropped, check.unverified) == (studies, studies - len(matches), 0)
    assert check.ignored == {"ModalitiesInStudy": studies - len(matches)}
    assert check.checked_by_series == studies
    answers = client.iter_find(node, query)
    assert answers.check.answers == 0
    assert len(list(answers)) == len(matches) and answers.check == check
    retrieved = client.get(node, query)
    assert retrieved.check == check and retrieved.requests == len(matches)
    control = client.find(Node(ae_title=orthanc.ae_title, host=orthanc.host, port=orthanc.port), query)
    assert {m.StudyInstanceUID for m in control} == studies_with(corpus, "MR")
    assert (control.check.answers, control.check.dropped, control.check.unverified) == (len(control), 0, 0)


def test_series_level_keys_of_the_study_above_are_checked_in_steps(dcmqrscp, corpus):
    series = run_cli("find", dcmqrscp.address, "-l", "series", "-k", f"InstitutionName={HOSPITAL}",
                     "--modality", "CT", "-f", "dicom-json")
    assert series.returncode == 0, series.stderr
    assert {m["0020000E"]["Value"][0] for m in json.loads(series.stdout)} == \
        {c.series_uid for c in corpus if c.modality == "CT"}
    studies = len({c.study_uid for c in corpus})
    assert check_lines(series) == [f"{studies} of {studies} study answers kept unverified: "
                                   "the PACS returned no InstitutionName to check them against"]


class LaxFindSCP:
    """A C-FIND SCP that ignores every key: it answers every study of ``studies`` with its
    InstitutionName and an empty ModalitiesInStudy, and at the series level every series of
    the study asked for — without a Modality for the studies in ``no_modality``."""

    def __init__(self, corpus, institutions: dict[str, str], no_modality: set[str]) -> None:
        self.corpus, self.institutions, self.no_modality = corpus, institutions, no_modality
        self.ae = AE(ae_title="LAX")
        self.ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        self.port = free_port()
        self.server = self.ae.start_server((LOOPBACK, self.port), block=False,
                                           evt_handlers=[(evt.EVT_C_FIND, self.answer)])

    @property
    def address(self) -> str:
        return f"dicom://LAX@{LOOPBACK}:{self.port}"

    def answer(self, event):
        request = event.identifier
        if request.QueryRetrieveLevel == "STUDY":
            for study, institution in sorted(self.institutions.items()):
                ds = Dataset()
                ds.QueryRetrieveLevel, ds.StudyInstanceUID, ds.InstitutionName = "STUDY", study, institution
                ds.PatientID = next(c.patient_id for c in self.corpus if c.study_uid == study)
                ds.ModalitiesInStudy = ""
                yield 0xFF01, ds
        elif request.QueryRetrieveLevel == "SERIES":
            study = str(request.StudyInstanceUID)
            for series in sorted({(c.series_uid, c.modality) for c in self.corpus if c.study_uid == study}):
                ds = Dataset()
                ds.QueryRetrieveLevel, ds.StudyInstanceUID, ds.SeriesInstanceUID = "SERIES", study, series[0]
                ds.Modality = "" if study in self.no_modality else series[1]
                yield 0xFF00, ds

    def close(self) -> None:
        self.server.shutdown()


def test_answers_of_a_pacs_that_ignores_every_key(corpus):
    studies = sorted({c.study_uid for c in corpus})
    institutions = {s: ("NORTH" if i % 2 == 0 else "SOUTH") for i, s in enumerate(studies)}
    north = {s for s, place in institutions.items() if place == "NORTH"}
    no_modality = {studies[0]}
    with_mr = studies_with(corpus, "MR")
    lax = LaxFindSCP(corpus, institutions, no_modality)
    try:
        result = run_cli("find", lax.address, "--modality", "MR", "-k", "InstitutionName=NORTH", "-f", "dicom-json")
        matches = Client(Settings()).find(lax.address, Query.build("study", modality="MR",
                                                                   keys=["InstitutionName=NORTH"]))
    finally:
        lax.close()
    kept = {s for s in north if s in with_mr or s in no_modality}
    assert listed(result) == kept == {m.StudyInstanceUID for m in matches}
    check = matches.check
    assert (check.answers, check.dropped, check.unverified) == (len(studies), len(studies) - len(kept), 1)
    assert check.ignored["InstitutionName"] == len(studies) - len(north)
    assert check.unreturned == {"ModalitiesInStudy": 1}
    assert check_lines(result) == [
        f"{len(studies) - len(kept)} of {len(studies)} study answers dropped: the PACS ignored "
        + " and ".join(sorted(check.ignored)),
        f"1 of {len(studies)} study answers kept unverified: the PACS returned no ModalitiesInStudy "
        "to check it against",
    ]


class LaxQido(BaseHTTPRequestHandler):
    """A QIDO-RS server that ignores every query parameter: every study, each study's
    series; ModalitiesInStudy left out of the first study."""

    corpus: list = []

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        studies = sorted({c.study_uid for c in self.corpus})
        if path.endswith("/studies"):
            body = [{STUDY_TAG: {"vr": "UI", "Value": [s]},
                     "00100020": {"vr": "LO", "Value": [next(c.patient_id for c in self.corpus if c.study_uid == s)]},
                     **({} if s == studies[0] else {"00080061": {"vr": "CS", "Value": sorted(
                         {c.modality for c in self.corpus if c.study_uid == s})}})} for s in studies]
        elif path.endswith("/series"):
            study = path.split("/")[-2]
            assert parse_qs(urlsplit(self.path).query).get("includefield") == ["Modality"]
            body = [{STUDY_TAG: {"vr": "UI", "Value": [study]}, "0020000E": {"vr": "UI", "Value": [uid]},
                     "00080060": {"vr": "CS", "Value": [modality]}}
                    for uid, modality in sorted({(c.series_uid, c.modality) for c in self.corpus
                                                 if c.study_uid == study})]
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_qido_rs_answers_are_checked_too(corpus):
    LaxQido.corpus = corpus
    server = ThreadingHTTPServer((LOOPBACK, 0), LaxQido)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://{LOOPBACK}:{server.server_address[1]}/dicom-web"
        result = run_cli("find", url, "--modality", "MR", "-f", "dicom-json")
        matches = Client(Settings()).find(url, Query.build("study", modality="MR"))
    finally:
        server.shutdown()
    with_mr = studies_with(corpus, "MR")
    studies = len({c.study_uid for c in corpus})
    assert listed(result) == with_mr == {m.StudyInstanceUID for m in matches}
    assert (matches.check.dropped, matches.check.unverified, matches.check.checked_by_series) == \
        (studies - len(with_mr), 0, 1)
    assert check_lines(result) == [f"{studies - len(with_mr)} of {studies} study answers dropped: "
                                   "the PACS ignored ModalitiesInStudy"]


def test_move_by_modality_moves_only_the_studies_that_match(tmp_path, corpus_dir, corpus, storescp):
    with DcmQrSCP(tmp_path / "q", move_destinations={storescp.ae_title: (storescp.host, storescp.port)}) as peer:
        peer.load([corpus_dir])
        result = run_cli("move", peer.address, "--modality", "MR", "--to", storescp.ae_title, "-f", "json")
    assert result.returncode == 0, result.stderr
    with_mr = studies_with(corpus, "MR")
    moved = {dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in storescp.received()}
    assert moved == instances_of(corpus, with_mr)
    assert json.loads(result.stdout)["check"]["dropped"] == len({c.study_uid for c in corpus}) - len(with_mr)
    assert len(check_lines(result)) == 1 and "the PACS ignored ModalitiesInStudy" in result.stderr
