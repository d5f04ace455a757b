"""Modality Worklist (PS3.4 Annex K): ``pacskit serve`` against DCMTK's ``wlmscpfs`` on
DCMTK's own worklist corpus, ``pacskit worklist`` against ``findscu -W``, and the items
kept with ``worklist add|ls|rm|status`` and over HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from clirunner import assert_one_line_error, run_cli
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from served import ARCHIVE_AET, served_archive
from worklist_answers import (
    ADJUSTMENTS,
    CORPUS_ITEMS,
    CORPUS_QUERIES,
    answer_set,
    dump_to_dicom,
    findscu_worklist,
)

from pacskit.archive.worklist import Worklist
from pacskit.settings import NodeConfig
from pacskit.testing.peers import WlmScpFs
from pacskit.worklist import MODALITY_WORKLIST_FIND, ItemStatus, WorklistQuery
from pacskit.worklist.items import from_file, item_uid

KNOWN = {"findscu": NodeConfig(ae_title="FINDSCU", host="127.0.0.1", port=1),
         "pacskit": NodeConfig(ae_title="PACSKIT", host="127.0.0.1", port=1)}

LATIN1_NAME = "MÜLLER^JÖRG"
UTF8_NAME = "ŁUKASIEWICZ^ŻANETA"
CHARSET_ITEMS = {"latin1": ("ISO_IR 100", LATIN1_NAME, "Schädel nativ"),
                 "utf8": ("ISO_IR 192", UTF8_NAME, "Głowa bez kontrastu")}

# Queries of our own, as findscu -k keys, on values the corpus has: each kind of matching.
KEY_QUERIES = {
    "station-aet": ["(0040,0100)[0].ScheduledStationAETitle=AA32", "(0040,0100)[0].Modality",
                    "PatientID"],
    "modality": ["(0040,0100)[0].Modality=CT", "(0040,0100)[0].ScheduledProcedureStepStartDate",
                 "AccessionNumber"],
    "date-range": ["(0040,0100)[0].ScheduledProcedureStepStartDate=19960101-19961231",
                   "(0040,0100)[0].ScheduledProcedureStepStartTime", "PatientID"],
    "open-date-range": ["(0040,0100)[0].ScheduledProcedureStepStartDate=-19951231", "PatientID"],
    "date-and-time-ranges": ["(0040,0100)[0].ScheduledProcedureStepStartDate=19951015-19960406",
                             "(0040,0100)[0].ScheduledProcedureStepStartTime=085607-160700",
                             "AccessionNumber"],
    "date-and-time": ["(0040,0100)[0].ScheduledProcedureStepStartDate=19960406",
                      "(0040,0100)[0].ScheduledProcedureStepStartTime=1500-1700", "AccessionNumber"],
    "time-range": ["(0040,0100)[0].ScheduledProcedureStepStartTime=120000-", "PatientID"],
    "name-wildcard": ["PatientName=VIVALDI*", "(0040,0100)[0].Modality"],
    "accession-wildcard": ["AccessionNumber=0000?", "(0040,0100)[0].ScheduledStationAETitle"],
    "priority": ["RequestedProcedurePriority=LOW", "PatientID", "(0040,0100)"],
    "performing-physician": ["(0040,0100)[0].ScheduledPerformingPhysicianName=JOHNSON", "PatientID"],
    "patient-and-modality": ["PatientID=HF", "(0040,0100)[0].Modality=CR",
                             "(0040,0100)[0].ScheduledStationAETitle"],
    "no-match": ["PatientID=NOBODY", "(0040,0100)[0].Modality"],
}


def _corpus_queries(folder: Path) -> dict[str, Path]:
    queries = {path.stem: dump_to_dicom(path, folder / f"{path.stem}.dcm") for path in CORPUS_QUERIES}
    for path in CORPUS_QUERIES:
        if any(old in path.read_text() for old in ADJUSTMENTS):
            name = f"{path.stem}-adjusted"
            queries[name] = dump_to_dicom(path, folder / f"{name}.dcm", ADJUSTMENTS)
    return queries


def _charset_item(folder: Path, name: str) -> Path:
    charset, patient, description = CHARSET_ITEMS[name]
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.PatientName = patient
    ds.PatientID = f"CS-{name}"
    ds.AccessionNumber = f"ACC-{name}"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.1.{len(name)}"
    ds.RequestedProcedureID = f"RP-{name}"
    ds.RequestedProcedureDescription = description
    step = Dataset()
    step.ScheduledStationAETitle = "CHARSET"
    step.ScheduledProcedureStepStartDate = "20261201"
    step.ScheduledProcedureStepStartTime = "0930"
    step.Modality = "MR"
    step.ScheduledProcedureStepDescription = description
    step.ScheduledProcedureStepID = f"SPS-{name}"
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return _save(ds, folder / f"{name}.wl")


def _save(ds: Dataset, path: Path) -> Path:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = MODALITY_WORKLIST_FIND
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def worklist_files(tmp_path_factory):
    """The corpus's 10 items and a Latin-1 and a UTF-8 item, as DICOM files (.wl)."""
    folder = tmp_path_factory.mktemp("worklist-files")
    files = [dump_to_dicom(path, folder / f"{path.stem}.wl") for path in CORPUS_ITEMS]
    return files + [_charset_item(folder, name) for name in CHARSET_ITEMS]


@pytest.fixture(scope="module")
def wlmscpfs(tmp_path_factory, worklist_files):
    with WlmScpFs(tmp_path_factory.mktemp("wlmscpfs")) as peer:
        peer.load(worklist_files)
        yield peer


@pytest.fixture(scope="module")
def serve(tmp_path_factory, worklist_files):
    with served_archive(tmp_path_factory.mktemp("serve"), [], nodes=KNOWN) as archive:
        worklist = Worklist(archive.index)
        for path in worklist_files:
            for item in from_file(path):
                worklist.add(item, item_uid(item))
        yield archive


@pytest.fixture(scope="module")
def queries(tmp_path_factory):
    return _corpus_queries(tmp_path_factory.mktemp("worklist-queries"))


def test_the_corpus_has_ten_items_and_thirteen_queries():
    assert len(CORPUS_ITEMS) == 10
    assert len(CORPUS_QUERIES) == 13


@pytest.mark.parametrize("name", [p.stem for p in CORPUS_QUERIES]
                         + [f"{p.stem}-adjusted" for p in CORPUS_QUERIES
                            if any(old in p.read_text() for old in ADJUSTMENTS)])
def test_findscu_gets_the_same_answers_from_serve_and_wlmscpfs_for_each_corpus_query(
        name, queries, serve, wlmscpfs):
    theirs, their_log = findscu_worklist(wlmscpfs.ae_title, wlmscpfs.port, queries[name])
    ours, our_log = findscu_worklist(ARCHIVE_AET, serve.settings.port, queries[name])
    assert "Success" in their_log and "Success" in our_log, (their_log, our_log)
    assert answer_set(ours, ours=True) == answer_set(theirs, ours=False)


def test_the_adjusted_corpus_queries_find_items():
    adjusted = [p for p in CORPUS_QUERIES if any(old in p.read_text() for old in ADJUSTMENTS)]
    assert len(adjusted) == 7


@pytest.mark.parametrize("name", list(KEY_QUERIES))
def test_findscu_gets_the_same_answers_from_serve_and_wlmscpfs_for_each_kind_of_matching(
        name, serve, wlmscpfs):
    keys = KEY_QUERIES[name]
    theirs, their_log = findscu_worklist(wlmscpfs.ae_title, wlmscpfs.port, keys=keys)
    ours, our_log = findscu_worklist(ARCHIVE_AET, serve.settings.port, keys=keys)
    assert "Success" in their_log and "Success" in our_log, (their_log, our_log)
    assert answer_set(ours, ours=True) == answer_set(theirs, ours=False)
    if name != "no-match":
        assert ours, "the query finds items"


def test_a_combined_date_time_range_is_one_range_not_two(serve):
    keys = ["(0040,0100)[0].ScheduledProcedureStepStartDate=19951015-19960406",
            "(0040,0100)[0].ScheduledProcedureStepStartTime=085607-160700", "AccessionNumber"]
    ours, _ = findscu_worklist(ARCHIVE_AET, serve.settings.port, keys=keys)
    accessions = sorted(a["00080050"]["Value"][0] for a in ours)
    # 19951206 09:45 and 19960103 16:57 lie between the two moments though 16:57 is after
    # 16:07; 19960406 16:07 is the end itself.
    assert accessions == ["00000", "00002", "00003", "00004", "00005"]


def test_a_query_sequence_of_two_items_is_refused_0xa900_by_both(serve, wlmscpfs):
    keys = ["(0040,0100)[0].Modality=MR", "(0040,0100)[1].Modality=CT"]
    for ae_title, port in ((wlmscpfs.ae_title, wlmscpfs.port), (ARCHIVE_AET, serve.settings.port)):
        answers, log = findscu_worklist(ae_title, port, keys=keys)
        assert answers == []
        assert "DataSetDoesNotMatchSOPClass" in log, log


def _final_find_response(ae_title: str, port: int, identifier: Dataset):
    """The final C-FIND-RSP (its command elements) to ``identifier`` on a worklist context."""
    from pynetdicom import build_context

    from pacskit.net.association import associate
    from pacskit.net.commands import STATUS, c_find_rq
    from pacskit.net.identifier import encode_identifier
    from pacskit.nodes import Node
    from pacskit.settings import Settings

    node = Node(ae_title=ae_title, host="127.0.0.1", port=port)
    with associate(Settings(ae_title="FINDSCU"), node, [build_context(MODALITY_WORKLIST_FIND)]) as association:
        context = next(iter(association.contexts.values()))
        message_id = association.next_message_id()
        for response in association.request(context.context_id, c_find_rq(message_id, MODALITY_WORKLIST_FIND),
                                            encode_identifier(identifier, context.transfer_syntax)):
            if response.us(STATUS) != 0xFF00:
                return response
    raise AssertionError("no final response")


def test_the_refusal_of_a_two_item_sequence_names_the_sequence_as_wlmscpfs_does(serve, wlmscpfs):
    identifier = Dataset()
    identifier.ScheduledProcedureStepSequence = Sequence([Dataset(), Dataset()])
    identifier.ScheduledProcedureStepSequence[0].Modality = "MR"
    identifier.ScheduledProcedureStepSequence[1].Modality = "CT"
    theirs = _final_find_response(wlmscpfs.ae_title, wlmscpfs.port, identifier)
    ours = _final_find_response(ARCHIVE_AET, serve.settings.port, identifier)
    assert ours.us(0x0900) == 0xA900
    assert ours.tags(0x0901) == [0x00400100]
    assert ours.us(0x0900) == theirs.us(0x0900), theirs.command
    assert ours.tags(0x0901) == theirs.tags(0x0901), theirs.command


@pytest.mark.parametrize("name", list(CHARSET_ITEMS))
def test_latin1_and_utf8_items_come_back_in_their_character_set_from_both(name, serve, wlmscpfs):
    charset, patient, description = CHARSET_ITEMS[name]
    keys = [f"PatientID=CS-{name}", "PatientName", "RequestedProcedureDescription"]
    for ae_title, port in ((wlmscpfs.ae_title, wlmscpfs.port), (ARCHIVE_AET, serve.settings.port)):
        answers, log = findscu_worklist(ae_title, port, keys=keys)
        assert len(answers) == 1, log
        answer = answers[0]
        assert answer["00080005"]["Value"] == [charset]
        assert answer["00100010"]["Value"] == [{"Alphabetic": patient}]
        assert answer["00321060"]["Value"] == [description]


def test_a_utf8_query_finds_a_latin1_item(serve):
    query = WorklistQuery.build(keys=[f"RequestedProcedureDescription={CHARSET_ITEMS['latin1'][2]}"])
    from pacskit.client import Client
    from pacskit.settings import Settings

    client = Client(Settings())
    items = client.worklist(f"dicom://{ARCHIVE_AET}@127.0.0.1:{serve.settings.port}", query)
    assert [str(i.AccessionNumber) for i in items] == ["ACC-latin1"]
    assert items[0].SpecificCharacterSet == "ISO_IR 100"


@pytest.mark.parametrize(("options", "expected"), [
    (["--modality", "CT"], 4),
    (["--station-aet", "AA32"], 2),
    (["--date", "19960101-19961231"], 6),
    (["--patient-id", "HF", "--modality", "CR"], 1),
    (["-k", "ScheduledProcedureStepSequence.ScheduledStationName=STN456"], 12),
    (["--accession", "00007", "-k", "RequestedProcedurePriority", "-k", "ScheduledProcedureStepSequence.PreMedication"], 1),
])
def test_pacskit_worklist_gets_what_findscu_gets_from_wlmscpfs(options, expected, wlmscpfs, tmp_path):
    result = run_cli("worklist", wlmscpfs.address, *options, "--format", "dicom-json")
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    query = _query_from_options(options)
    path = _save(query.to_identifier(), tmp_path / "query.dcm")
    theirs, log = findscu_worklist(wlmscpfs.ae_title, wlmscpfs.port, path, calling="PACSKIT")
    assert sorted(json.dumps(a, sort_keys=True) for a in ours) == \
        sorted(json.dumps(a, sort_keys=True) for a in theirs)
    # wlmscpfs does not match on ScheduledStationName (not one of its matching keys),
    # so the STN456 query gets all 12 items from it; pacskit serve matches it.
    assert len(ours) == expected


def _query_from_options(options: list[str]) -> WorklistQuery:
    names = {"--modality": "modality", "--station-aet": "station_aet", "--date": "date",
             "--patient-id": "patient_id", "--accession": "accession"}
    filters: dict = {"keys": []}
    pairs = iter(options)
    for option in pairs:
        value = next(pairs)
        if option == "-k":
            filters["keys"].append(value)
        else:
            filters[names[option]] = value
    return WorklistQuery.build(**filters)


def test_serve_matches_keys_wlmscpfs_ignores(serve):
    result = run_cli("worklist", f"dicom://{ARCHIVE_AET}@127.0.0.1:{serve.settings.port}",
                     "-k", "ScheduledProcedureStepSequence.ScheduledStationName=STN456", "--format", "csv")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and ",MR," in lines[1] and ",AV35674," in lines[1]


def test_the_worklist_table_shows_steps_by_date_without_names(serve):
    result = run_cli("worklist", f"dicom://{ARCHIVE_AET}@127.0.0.1:{serve.settings.port}",
                     "--modality", "CT", "--format", "tsv")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split("\t")[:7] == ["ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime",
                                      "ScheduledStationAETitle", "Modality",
                                      "ScheduledProcedureStepDescription", "PatientID", "AccessionNumber"]
    dates = [row.split("\t")[0] for row in rows]
    assert dates == sorted(dates) and len(rows) == 4
    assert "PatientName" not in header
    for name in ("VIVALDI", "HAYDN", "MOZART", "BEETHOVEN"):
        assert name not in result.stdout
    named = run_cli("worklist", f"dicom://{ARCHIVE_AET}@127.0.0.1:{serve.settings.port}",
                    "--modality", "CT", "--format", "tsv", env={"PACSKIT_ALLOW_PATIENT_NAMES": "true"})
    assert "PatientName" in named.stdout.splitlines()[0] and "HAYDN^FRANZ^JOSEPH" in named.stdout


def test_a_worklist_query_on_a_name_needs_names_allowed(serve):
    result = run_cli("worklist", f"dicom://{ARCHIVE_AET}@127.0.0.1:{serve.settings.port}",
                     "-k", "PatientName=VIVALDI*")
    assert_one_line_error(result, 6, "needs patient names")


def test_calling_ae_as_station_and_the_per_peer_limit(serve):
    node = f"dicom://{ARCHIVE_AET}@127.0.0.1:{serve.settings.port}"
    options = serve.settings.archive.worklist
    peers = serve.scp.access.peers
    try:
        options.calling_ae_as_station = True
        peers["AA32"] = NodeConfig(ae_title="AA32", host="127.0.0.1", port=1)
        mine = run_cli("worklist", node, "--aet", "AA32", "--format", "csv")
        options.calling_ae_as_station = False
        serve.scp.access.peers["PACSKIT"] = NodeConfig(ae_title="PACSKIT", host="127.0.0.1", port=1,
                                                        worklist_limit=3)
        capped = run_cli("worklist", node, "--format", "csv")
    finally:
        options.calling_ae_as_station = False
        peers.pop("AA32", None)
        peers["PACSKIT"] = KNOWN["pacskit"]
    assert mine.returncode == 0, mine.stderr
    assert [line.split(",")[2] for line in mine.stdout.splitlines()[1:]] == ["AA32\\AA33", "AA32"]
    assert capped.returncode == 0, capped.stderr
    assert len(capped.stdout.splitlines()) == 1 + 3


def test_the_worklist_permission_is_its_own_not_find(serve):
    node = f"dicom://{ARCHIVE_AET}@127.0.0.1:{serve.settings.port}"
    peers = serve.scp.access.peers
    try:
        peers["MODALITY"] = NodeConfig(ae_title="MODALITY", host="127.0.0.1", port=1, allow=["worklist"])
        worklist = run_cli("worklist", node, "--aet", "MODALITY", "--format", "csv")
        find = run_cli("find", node, "--aet", "MODALITY", "-l", "study")
    finally:
        peers.pop("MODALITY", None)
    assert worklist.returncode == 0, worklist.stderr
    assert len(worklist.stdout.splitlines()) > 1
    assert find.returncode != 0 and "0x0124" in find.stderr, find.stderr


def test_an_unknown_peer_may_not_query_the_worklist(serve):
    answers, log = findscu_worklist(ARCHIVE_AET, serve.settings.port, keys=["PatientID"], calling="STRANGER")
    assert answers == []
    assert "Unknown Status: 0x124" in log, log


# --- the archive's items: worklist add, ls, rm, status; HTTP ---------------------------


def _add(data_dir: Path, *args: object):
    return run_cli("worklist", "add", "--data-dir", data_dir, *args)


def test_worklist_add_ls_status_rm(tmp_path):
    data = tmp_path / "archive"
    added = _add(data, "--patient-id", "P1", "--patient-name", "DOE^JANE", "--accession", "A1",
                 "--procedure", "CT head", "--station-aet", "CT1", "--modality", "CT",
                 "--date", "today", "--time", "09:30")
    assert added.returncode == 0, added.stderr
    uid, status = added.stdout.split()
    assert re.fullmatch(r"2\.25\.\d+", uid) and status == "SCHEDULED"
    files = _add(data, *CORPUS_ITEMS[:3])
    assert files.returncode == 0, files.stderr
    listed = run_cli("worklist", "ls", "--data-dir", data, "--format", "json")
    items = json.loads(listed.stdout)
    assert len(items) == 4 and {i["status"] for i in items} == {"SCHEDULED"}
    assert "DOE" not in listed.stdout and "VIVALDI" not in listed.stdout
    started = run_cli("worklist", "status", "--data-dir", data, uid, "started")
    assert started.returncode == 0 and started.stdout.split() == [uid, "STARTED"]
    back = run_cli("worklist", "status", "--data-dir", data, uid, "SCHEDULED")
    assert_one_line_error(back, 7, "cannot become SCHEDULED")
    tsv = run_cli("worklist", "ls", "--data-dir", data, "--format", "tsv", "--status", "started")
    assert tsv.stdout.splitlines()[1].split("\t")[:2] == [uid, "STARTED"]
    assert tsv.stdout.splitlines()[1].split("\t")[4:6] == ["CT1", "CT"]
    removed = run_cli("worklist", "rm", "--data-dir", data, uid)
    assert removed.returncode == 0, removed.stderr
    assert len(json.loads(run_cli("worklist", "ls", "--data-dir", data, "--format", "json").stdout)) == 3
    assert_one_line_error(run_cli("worklist", "rm", "--data-dir", data, uid), 7, f"no worklist item {uid}")


def test_an_item_lacking_type_1_attributes_is_refused_with_the_reason(tmp_path):
    data = tmp_path / "archive"
    result = _add(data, "--patient-id", "P1", "--patient-name", "DOE^JANE", "--procedure", "CT head",
                  "--modality", "CT", "--date", "20261201", "--time", "0930")
    assert_one_line_error(result, 7, "lacks ScheduledProcedureStepSequence>ScheduledStationAETitle")
    broken = tmp_path / "broken.dump"
    broken.write_text("\n".join(line for line in CORPUS_ITEMS[0].read_text().splitlines()
                                if "(0010,0020)" not in line and "(0040,0009)" not in line))
    result = _add(data, CORPUS_ITEMS[1], broken)
    assert_one_line_error(result, 7, "broken.dump: the worklist item lacks PatientID, "
                                     "ScheduledProcedureStepSequence>ScheduledProcedureStepID")
    listed = run_cli("worklist", "ls", "--data-dir", data, "--format", "json")
    assert json.loads(listed.stdout or "[]") == [], "nothing is added when one item is refused"


def test_an_item_added_twice_is_refused_unless_replaced(tmp_path):
    data = tmp_path / "archive"
    assert _add(data, CORPUS_ITEMS[0]).returncode == 0
    assert_one_line_error(_add(data, CORPUS_ITEMS[0]), 7, "already on the worklist")
    assert _add(data, CORPUS_ITEMS[0], "--replace").returncode == 0
    assert len(json.loads(run_cli("worklist", "ls", "--data-dir", data, "--format", "json").stdout)) == 1


def test_completed_items_are_no_longer_answered(tmp_path):
    with served_archive(tmp_path, [], nodes=KNOWN) as archive:
        worklist = Worklist(archive.index)
        items = [from_file(path)[0] for path in CORPUS_ITEMS[:2]]
        stored = [worklist.add(item, item_uid(item)) for item in items]
        worklist.set_status(stored[0].uid, ItemStatus.COMPLETED)
        answers, _ = findscu_worklist(ARCHIVE_AET, archive.settings.port,
                                      keys=["AccessionNumber", "(0040,0100)[0].ScheduledProcedureStepStatus"])
    assert [a["00080050"]["Value"] for a in answers] == [[str(items[1].AccessionNumber)]]
    assert answers[0]["00400100"]["Value"][0]["00400020"]["Value"] == ["SCHEDULED"]


def test_worklist_items_over_http(tmp_path):
    item = from_file(CORPUS_ITEMS[0])[0].to_json_dict()
    with served_archive(tmp_path, [], nodes=KNOWN) as archive:
        base = f"http://127.0.0.1:{archive.settings.web.port}/worklist"
        with httpx.Client(timeout=10) as http:
            created = http.post(base, json=item)
            assert created.status_code == 201, created.text
            uid = created.json()[0]["uid"]
            assert created.headers["location"].endswith(f"/worklist/{uid}")
            again = http.post(base, json=item)
            assert again.status_code == 409 and "already on the worklist" in again.text
            incomplete = {k: v for k, v in item.items() if k != "00100020"}
            refused = http.post(base, json=incomplete)
            assert refused.status_code == 400 and "lacks PatientID" in refused.text
            listed = http.get(base).json()
            assert [i["uid"] for i in listed] == [uid]
            got = http.get(f"{base}/{uid}")
            assert got.status_code == 200 and got.json()["status"] == "SCHEDULED"
            assert got.json()["item"]["00100020"]["Value"] == ["AV35674"]
            answers, _ = findscu_worklist(ARCHIVE_AET, archive.settings.port, keys=["PatientID"])
            assert len(answers) == 1
            assert http.delete(f"{base}/{uid}").status_code == 204
            assert http.get(f"{base}/{uid}").status_code == 404
            assert http.delete(f"{base}/{uid}").status_code == 404


# AsyncClient.worklist on the asyncio driver (pacskit.aio_worklist): the answers of
# Client.worklist, no thread, and a timeout that cancels the C-FIND on the wire.

ASYNC_QUERIES = {
    "everything": {},
    "modality": {"modality": "CT"},
    "station-and-date": {"station_aet": "AA32", "date": "19960101-19961231"},
    "patient-and-modality": {"patient_id": "HF", "modality": "CR"},
    "keys-in-the-step": {"accession": "00007", "keys": ["RequestedProcedurePriority",
                                                        "ScheduledProcedureStepSequence.PreMedication"]},
    "a-latin1-description": {"keys": [f"RequestedProcedureDescription={CHARSET_ITEMS['latin1'][2]}"]},
    "limit": {"limit": 3},
    "no-match": {"patient_id": "NOBODY"},
}


def _async_worklist(address: str, settings=None, **call):
    import asyncio

    from pacskit import AsyncClient, Settings

    return asyncio.run(AsyncClient(settings or Settings()).worklist(address, **call))


def _as_json(items) -> list[str]:
    return [json.dumps(item.to_json_dict(), sort_keys=True) for item in items]


@pytest.mark.parametrize("peer", ["wlmscpfs", "serve"])
@pytest.mark.parametrize("name", list(ASYNC_QUERIES))
def test_async_worklist_gets_what_client_worklist_gets(name, peer, request):
    from pacskit import Client, Settings

    archive = request.getfixturevalue(peer)
    address = archive.address if peer == "wlmscpfs" else f"dicom://{ARCHIVE_AET}@127.0.0.1:{archive.settings.port}"
    filters = ASYNC_QUERIES[name]
    theirs = Client(Settings()).worklist(address, **filters)
    by_filters = _async_worklist(address, timeout=30, **filters)
    by_query = _async_worklist(address, query=WorklistQuery.build(**filters), timeout=30)
    assert _as_json(by_filters) == _as_json(theirs)
    assert _as_json(by_query) == _as_json(theirs)
    # wlmscpfs does not match on RequestedProcedureDescription (not one of its keys).
    expected = {"everything": 12, "limit": 3, "no-match": 0, "a-latin1-description": 1 if peer == "serve" else 12}
    if name in expected:
        assert len(theirs) == expected[name]
    else:
        assert theirs
    assert not any("PatientName" in item for item in theirs), "a name without the opt-in"


def test_async_worklist_names_only_with_the_opt_in(wlmscpfs):
    from pacskit import Client, Settings
    from pacskit.errors import QueryError

    named = Settings(allow_patient_names=True)
    keys = {"keys": ["PatientID=CS-latin1", "PatientName"]}
    ours = _async_worklist(wlmscpfs.address, named, timeout=30, **keys)
    assert [str(item.PatientName) for item in ours] == [LATIN1_NAME]
    assert _as_json(ours) == _as_json(Client(named).worklist(wlmscpfs.address, **keys))
    with pytest.raises(QueryError, match="PatientName"):
        _async_worklist(wlmscpfs.address, timeout=30, keys=["PatientName=VIVALDI*"])


def test_no_thread_runs_during_an_async_worklist(wlmscpfs):
    import asyncio
    import threading

    from pacskit import AsyncClient, Client, Settings

    before = set(threading.enumerate())
    seen: list[set[threading.Thread]] = []

    async def main() -> tuple[list, list]:
        client = AsyncClient(Settings())
        call = asyncio.create_task(client.worklist(wlmscpfs.address, timeout=30))
        while not call.done():
            seen.append(set(threading.enumerate()))
            await asyncio.sleep(0)
        iterated = []
        async with client.iter_worklist(wlmscpfs.address, timeout=30) as found:
            async for item in found:
                seen.append(set(threading.enumerate()))
                iterated.append(item)
        seen.append(set(threading.enumerate()))
        return await call, iterated

    listed, iterated = asyncio.run(main())
    assert len(listed) == 12 and _as_json(iterated) == _as_json(listed)
    assert _as_json(listed) == _as_json(Client(Settings()).worklist(wlmscpfs.address))
    assert len(seen) > 12
    assert all(threads == before for threads in seen), [t.name for t in set.union(*seen) - before]


def test_an_async_worklist_timeout_sends_c_cancel_and_stops_within_a_second(wlmscpfs):
    import struct

    from driver_checks import seconds_to_time_out
    from proxy import RecordingProxy

    from pacskit import AsyncClient, Settings

    proxy = RecordingProxy("127.0.0.1", wlmscpfs.port, delay=0.2, chunk_size=64)
    try:
        address = f"dicom://{wlmscpfs.ae_title}@127.0.0.1:{proxy.port}"
        seconds = seconds_to_time_out(lambda: AsyncClient(Settings()).worklist(address, timeout=1.0))
        assert seconds < 2.0, f"{seconds:.2f} s for a timeout of 1 s"
        assert proxy.wait_idle(5), "the association was not ended"
    finally:
        proxy.close()
    sent = bytes(proxy.sent)
    assert struct.pack("<HHIH", 0x0000, 0x0100, 2, 0x0FFF) in sent, "no C-CANCEL-RQ was sent"


def test_leaving_an_async_worklist_iteration_early_sends_c_cancel(wlmscpfs):
    import asyncio
    import struct

    from proxy import RecordingProxy

    from pacskit import AsyncClient, Settings
    from pacskit.errors import QueryError

    proxy = RecordingProxy("127.0.0.1", wlmscpfs.port)
    try:
        address = f"dicom://{wlmscpfs.ae_title}@127.0.0.1:{proxy.port}"

        async def first_two() -> list:
            got = []
            async with AsyncClient(Settings()).iter_worklist(address, timeout=30) as items:
                async for item in items:
                    got.append(item)
                    if len(got) == 2:
                        break
            return got

        assert len(asyncio.run(first_two())) == 2
        assert proxy.wait_idle(5), "the association was not ended"
    finally:
        proxy.close()
    assert struct.pack("<HHIH", 0x0000, 0x0100, 2, 0x0FFF) in bytes(proxy.sent), "no C-CANCEL-RQ was sent"
    with pytest.raises(QueryError, match="PatientName"):
        AsyncClient(Settings()).iter_worklist(address, keys=["PatientName=VIVALDI*"])


def test_an_async_worklist_of_a_peer_without_one_fails_as_client_worklist_does(storescp):
    from pacskit import Client, Settings
    from pacskit.errors import ServiceNotSupported

    with pytest.raises(ServiceNotSupported) as theirs:
        Client(Settings()).worklist(storescp.address)
    with pytest.raises(ServiceNotSupported) as ours:
        _async_worklist(storescp.address, timeout=30)
    assert str(ours.value) == str(theirs.value)
