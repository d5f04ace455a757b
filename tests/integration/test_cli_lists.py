"""Lists on the command line, through the real console script against `pacskit serve`:
repeated ``-p`` (one query per PatientID, PS3.4 C.2.2.2.2 lists only UIDs), ``--from-file``
(a file or standard input; UIDs are one list query), and a run over many items that goes on
past a failed one and exits 26."""

from __future__ import annotations

import json
import shutil

import pytest
from clirunner import assert_one_line_error, run_cli
from served import ARCHIVE_AET, CLIENT_NODES, served_archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory, corpus):
    with served_archive(tmp_path_factory.mktemp("lists"), [c.path for c in corpus], nodes=CLIENT_NODES) as served:
        yield served


def address(archive):
    return f"dicom://{ARCHIVE_AET}@127.0.0.1:{archive.settings.port}"


def patients(corpus):
    return sorted({c.patient_id for c in corpus})


def studies_of(corpus, *patient_ids):
    return {c.study_uid for c in corpus if c.patient_id in patient_ids}


def find_requests(stderr):
    return sum("Sending C-FIND-RQ" in line for line in stderr.splitlines())


def test_find_with_repeated_patient_ids_asks_once_per_id(archive, corpus):
    first, second = patients(corpus)
    result = run_cli("find", address(archive), "-p", first, "-p", second, "-f", "json", "-v")
    assert result.returncode == 0, result.stderr
    assert {m["StudyInstanceUID"] for m in json.loads(result.stdout)} == studies_of(corpus, first, second)
    assert find_requests(result.stderr) == 2


def test_find_reads_patient_ids_from_standard_input(archive, corpus):
    first, second = patients(corpus)
    result = run_cli("find", address(archive), "--from-file", "-", "--from-file-key", "PatientID", "-f", "json",
                     input=f"# patients\n{first}\n\n{second}\n")
    assert result.returncode == 0, result.stderr
    assert {m["PatientID"] for m in json.loads(result.stdout)} == {first, second}


def test_a_file_of_study_uids_is_one_list_query(archive, corpus, tmp_path):
    wanted = sorted({c.study_uid for c in corpus})[:3]
    listing = tmp_path / "studies.txt"
    listing.write_text("\n".join(wanted) + "\n")
    result = run_cli("find", address(archive), "--from-file", listing, "-f", "json", "-v")
    assert result.returncode == 0, result.stderr
    assert {m["StudyInstanceUID"] for m in json.loads(result.stdout)} == set(wanted)
    assert find_requests(result.stderr) == 1


def test_get_of_a_patient_list_brings_each_patient_and_reports_each(archive, corpus, tmp_path):
    first, second = patients(corpus)
    result = run_cli("get", address(archive), "-p", first, "-p", second, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert {p.stem for p in tmp_path.rglob("*.dcm")} == {c.sop_instance_uid for c in corpus}
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"PatientID={first}", f"PatientID={second}"]


def test_a_failed_item_does_not_stop_the_run_and_exits_26(tmp_path, corpus):
    first, second = patients(corpus)
    with served_archive(tmp_path / "damaged", [c.path for c in corpus], nodes=CLIENT_NODES) as damaged:
        for study in studies_of(corpus, first):
            shutil.rmtree(damaged.settings.archive.data_dir / "files" / study)
        result = run_cli("get", address(damaged), "-p", first, "-p", second, "-o", tmp_path / "out", "-f", "json")
    assert result.returncode == 26, result.stderr
    items = json.loads(result.stdout)
    assert [item["item"] for item in items] == [f"PatientID={first}", f"PatientID={second}"]
    assert items[0]["completed"] == 0 and items[1]["completed"] == 12
    assert {p.stem for p in (tmp_path / "out").rglob("*.dcm")} == {
        c.sop_instance_uid for c in corpus if c.patient_id == second}
    assert "1 of 2 items failed" in result.stderr


def test_store_a_file_of_study_uids_stores_each_and_reports_the_missing_one(archive, corpus, tmp_path):
    study = corpus[0].study_uid
    with served_archive(tmp_path / "empty", [], nodes=CLIENT_NODES) as empty:
        result = run_cli("store", corpus[0].path.parents[3], "--to", address(empty), "--from-file", "-",
                         "-f", "json", input=f"{study}\n1.2.3.4\n")
        assert result.returncode == 26, result.stderr
        stored = run_cli("find", address(empty), "-f", "json")
    first, missing = json.loads(result.stdout)
    assert first["sent"] == sum(c.study_uid == study for c in corpus)
    assert missing["item"] == "StudyInstanceUID=1.2.3.4" and missing["exit_code"] == 7
    assert [m["StudyInstanceUID"] for m in json.loads(stored.stdout)] == [study]


def test_bad_list_input_is_a_one_line_error(archive, corpus, tmp_path):
    assert_one_line_error(run_cli("find", address(archive), "--from-file", tmp_path / "absent.txt"), 7, "absent.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    assert_one_line_error(run_cli("find", address(archive), "--from-file", empty), 7, "no ID or UID")
    assert_one_line_error(run_cli("find", address(archive), "--from-file-key", "PatientID"), 2, "needs --from-file")
    assert_one_line_error(run_cli("find", address(archive), "-p", "A", "-p", "B", "--from-file", "-",
                                  "--from-file-key", "AccessionNumber", input="X\nY\n"), 2, "cannot be combined")
