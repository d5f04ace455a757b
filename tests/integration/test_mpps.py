"""Modality Performed Procedure Step (PS3.4 Annex F): ``pacskit mpps`` against
``pacskit serve`` — every status the SCP answers, the worklist item following the step,
the step kept as it was when a request is refused, and ``mpps show`` comparing a
completed step with what the archive holds."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from clirunner import assert_one_line_error, run_cli
from pydicom import Dataset
from pynetdicom import build_context
from served import ARCHIVE_AET, dimse_node, served_archive

from pacskit.archive.worklist import Worklist
from pacskit.mpps import MPPS_SOP_CLASS
from pacskit.mpps.build import StepFields, create_from_fields, final_set
from pacskit.mpps.model import StepStatus
from pacskit.net.association import associate
from pacskit.net.echo import c_echo
from pacskit.net.normalized import n_create, n_get, n_set
from pacskit.settings import NodeConfig, Settings
from pacskit.testing.corpus import generate_corpus
from pacskit.worklist import ItemStatus
from pacskit.worklist.items import from_fields, item_uid

KNOWN = {"modality": NodeConfig(ae_title="MODALITY", host="127.0.0.1", port=1)}
NAME = "DOE^JANE"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """One study: two series of two CT images."""
    return generate_corpus(tmp_path_factory.mktemp("mpps-corpus"), patients=1, studies_per_patient=1,
                           series_per_study=2, instances_per_series=2, rows=8, columns=8,
                           modalities=("CT",))


@pytest.fixture(scope="module")
def serve(tmp_path_factory, corpus):
    """The archive holding three of the four instances (the third is left out)."""
    held = [corpus[0].path, corpus[1].path, corpus[3].path]
    with served_archive(tmp_path_factory.mktemp("mpps-serve"), held, nodes=KNOWN) as archive:
        yield archive


def _node(archive) -> str:
    return f"dicom://{ARCHIVE_AET}@127.0.0.1:{archive.settings.port}"


def _mpps(*args: object, env: dict[str, str] | None = None):
    return run_cli("mpps", *args, "--aet", "MODALITY", env=env)


def _scheduled(archive, study_uid: str, number: int):
    item = from_fields({
        "PatientID": f"P{number}", "PatientName": NAME, "AccessionNumber": f"ACC{number}",
        "StudyInstanceUID": study_uid, "RequestedProcedureID": f"RP{number}",
        "RequestedProcedureDescription": "CT head",
        "ScheduledProcedureStepSequence.ScheduledStationAETitle": "MODALITY",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate": "20261202",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime": "0930",
        "ScheduledProcedureStepSequence.Modality": "CT",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepID": f"SPS{number}",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepDescription": "head plain",
    })
    return Worklist(archive.index).add(item, item_uid(item))


def test_a_step_from_a_worklist_item_starts_completes_and_is_final(serve, corpus, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pacskit.archive")
    item = _scheduled(serve, corpus[0].study_uid, 1)
    item_file = tmp_path / "item.json"
    item_file.write_text(json.dumps(item.to_json()))

    created = _mpps("create", _node(serve), "--from-worklist", item_file)
    assert created.returncode == 0, created.stderr
    uid = created.stdout.strip()
    worklist = Worklist(serve.index)
    assert worklist.get(item.uid).status is ItemStatus.STARTED
    stored = serve.mpps.get(uid)
    assert stored.status is StepStatus.IN_PROGRESS
    assert stored.dataset.PatientName == "" and stored.dataset.PatientID == "P1"
    assert stored.dataset.ScheduledStepAttributesSequence[0].ScheduledProcedureStepID == "SPS1"
    assert stored.created_by == "MODALITY"

    got = _mpps("get", _node(serve), uid, "--format", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["status"] == "IN PROGRESS"

    files = [str(corpus[0].path), str(corpus[1].path), str(corpus[2].path)]
    done = _mpps("set", _node(serve), uid, "--status", "COMPLETED", *[a for f in files for a in ("--instances", f)])
    assert done.returncode == 0, done.stderr
    assert "COMPLETED  3 instances in 2 series" in done.stdout
    assert worklist.get(item.uid).status is ItemStatus.COMPLETED
    assert serve.mpps.get(uid).status is StepStatus.COMPLETED

    again = _mpps("set", _node(serve), uid, "--status", "DISCONTINUED")
    assert_one_line_error(again, 21, "0x0110 (Processing Failure): Performed Procedure Step Object may no "
                                     "longer be updated (error ID 0xA710; offending (0040,0252))")
    assert serve.mpps.get(uid).status is StepStatus.COMPLETED
    assert len(serve.mpps.get(uid).dataset.PerformedSeriesSequence) == 2

    log = caplog.text
    assert f"MPPS {uid} created by MODALITY: IN PROGRESS" in log
    assert f"worklist item {item.uid}: SCHEDULED -> STARTED (MPPS {uid})" in log
    assert f"MPPS {uid} set by MODALITY: COMPLETED, 3 instances listed" in log
    assert f"MPPS N-SET of {uid} from MODALITY refused: 0x0110" in log
    assert NAME not in log and "DOE" not in log


def test_mpps_show_compares_a_completed_step_with_the_archive(serve, corpus):
    created = _mpps("create", _node(serve), "--modality", "CT", "--patient-id", "P9",
                    "--study-uid", corpus[0].study_uid)
    uid = created.stdout.strip()
    files = [a for c in corpus[:3] for a in ("--instances", str(c.path))]
    assert _mpps("set", _node(serve), uid, "--status", "COMPLETED", *files).returncode == 0
    data_dir = serve.settings.archive.data_dir

    shown = run_cli("mpps", "show", uid, "--data-dir", data_dir, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert (report["status"], report["listed"], report["held"]) == ("COMPLETED", 3, 3)
    assert [r["sop_instance_uid"] for r in report["listed_not_held"]] == [corpus[2].sop_instance_uid]
    assert [r["sop_instance_uid"] for r in report["held_not_listed"]] == [corpus[3].sop_instance_uid]

    text = run_cli("mpps", "show", uid, "--data-dir", data_dir)
    assert "Listed, not held  1" in text.stdout and corpus[2].sop_instance_uid in text.stdout
    assert "Held, not listed  1" in text.stdout and corpus[3].sop_instance_uid in text.stdout
    assert_one_line_error(run_cli("mpps", "show", "1.2.3.999", "--data-dir", data_dir), 7,
                          "no performed procedure step 1.2.3.999")


def test_a_step_ended_from_the_archives_study_lists_what_it_holds(serve, corpus):
    created = _mpps("create", _node(serve), "--modality", "CT", "--study-uid", corpus[0].study_uid)
    uid = created.stdout.strip()
    data_dir = serve.settings.archive.data_dir
    done = _mpps("set", _node(serve), uid, "--status", "COMPLETED", "--study-uid", corpus[0].study_uid,
                 "--data-dir", data_dir)
    assert done.returncode == 0, done.stderr
    assert "3 instances in 2 series" in done.stdout
    shown = json.loads(run_cli("mpps", "show", uid, "--data-dir", data_dir, "--format", "json").stdout)
    assert shown["listed_not_held"] == [] and shown["held_not_listed"] == []


def test_a_discontinued_step_discontinues_its_item(serve, corpus):
    item = _scheduled(serve, corpus[0].study_uid, 2)
    created = _mpps("create", _node(serve), "--modality", "CT", "--study-uid", corpus[0].study_uid,
                    "--step-id", "SPS2", "--procedure-id", "RP2", "--accession", "ACC2")
    uid = created.stdout.strip()
    assert Worklist(serve.index).get(item.uid).status is ItemStatus.STARTED
    stopped = _mpps("set", _node(serve), uid, "--status", "DISCONTINUED")
    assert stopped.returncode == 0, stopped.stderr
    assert Worklist(serve.index).get(item.uid).status is ItemStatus.DISCONTINUED
    assert len(serve.mpps.get(uid).dataset.PerformedSeriesSequence) == 1


def test_a_duplicate_create_is_refused_0111_and_an_unknown_step_0112(serve):
    uid = "1.2.826.0.1.3680043.10.543.77"
    assert _mpps("create", _node(serve), "--modality", "MR", "--uid", uid).returncode == 0
    assert_one_line_error(_mpps("create", _node(serve), "--modality", "CT", "--uid", uid), 21,
                          "N-CREATE failed at")
    again = _mpps("create", _node(serve), "--modality", "CT", "--uid", uid)
    assert "0x0111 (Duplication SOP Instance)" in again.stderr
    assert serve.mpps.get(uid).dataset.Modality == "MR"
    unknown = _mpps("set", _node(serve), "1.2.3.404", "--status", "COMPLETED")
    assert_one_line_error(unknown, 21, "0x0112 (No Such SOP Instance)")
    assert_one_line_error(_mpps("get", _node(serve), "1.2.3.404"), 21, "N-GET failed at")


def test_refused_requests_name_their_attributes_and_leave_the_step_as_it_was(serve):
    settings = Settings(ae_title="MODALITY")
    with associate(settings, dimse_node(serve), [build_context(MPPS_SOP_CLASS)]) as association:
        context = next(iter(association.contexts.values()))
        lacking = create_from_fields(StepFields(modality="CT", station_aet="CT1"))
        del lacking.Modality
        del lacking.ScheduledStepAttributesSequence
        missing = n_create(association, context, lacking, "1.2.826.0.1.3680043.10.543.80")
        completed = create_from_fields(StepFields(modality="CT", station_aet="CT1"))
        completed.PerformedProcedureStepStatus = "COMPLETED"
        invalid = n_create(association, context, completed, "1.2.826.0.1.3680043.10.543.81")
        good = n_create(association, context, create_from_fields(StepFields(modality="CT", station_aet="CT1",
                                                                            patient_id="P5")),
                        "1.2.826.0.1.3680043.10.543.82")
        not_allowed = Dataset()
        not_allowed.PatientID = "SOMEONE-ELSE"
        changed = n_set(association, context, good.sop_instance_uid, not_allowed)
        no_end = Dataset()
        no_end.PerformedProcedureStepStatus = "COMPLETED"
        unfinished = n_set(association, context, good.sop_instance_uid, no_end)
        bad_series = final_set(StepStatus.COMPLETED, [])
        del bad_series.PerformedSeriesSequence[0].ProtocolName
        series = n_set(association, context, good.sop_instance_uid, bad_series)
        not_a_uid = n_set(association, context, "1.2.x", bad_series)
    assert (missing.status, set(missing.offending)) == (0x0120, {0x00080060, 0x00400270})
    assert (invalid.status, invalid.offending) == (0x0106, (0x00400252,))
    assert good.status == 0x0000
    assert (changed.status, changed.offending) == (0x0106, (0x00100020,))
    assert (unfinished.status, set(unfinished.offending)) == (0x0121, {0x00400250, 0x00400251, 0x00400340})
    assert (series.status, series.offending) == (0x0120, (0x00181030,))
    assert not_a_uid.status == 0x0117
    step = serve.mpps.get(good.sop_instance_uid)
    assert (step.status, step.dataset.PatientID) == (StepStatus.IN_PROGRESS, "P5")
    assert serve.mpps.get("1.2.826.0.1.3680043.10.543.80") is None
    assert c_echo(settings, dimse_node(serve))[0] == 0x0000


def test_n_get_answers_the_attributes_asked_for(serve):
    settings = Settings(ae_title="MODALITY")
    uid = "1.2.826.0.1.3680043.10.543.90"
    with associate(settings, dimse_node(serve), [build_context(MPPS_SOP_CLASS),
                                                 build_context("1.2.840.10008.3.1.2.3.4")]) as association:
        contexts = {c.abstract_syntax: c for c in association.contexts.values()}
        n_create(association, contexts[MPPS_SOP_CLASS], create_from_fields(StepFields(
            modality="US", station_aet="US1", patient_id="P6")), uid)
        got = n_get(association, contexts["1.2.840.10008.3.1.2.3.4"], uid, [0x00400252, 0x00080060])
        on_create_class = n_get(association, contexts[MPPS_SOP_CLASS], uid)
    assert got.status == 0x0000
    assert sorted(e.keyword for e in got.dataset) == ["Modality", "PerformedProcedureStepStatus"]
    assert on_create_class.status == 0x0211


def test_an_unknown_peer_may_not_create_a_step(serve):
    refused = run_cli("mpps", "create", _node(serve), "--modality", "CT", "--aet", "STRANGER")
    assert refused.returncode != 0
    assert "0x0124" in refused.stderr


def test_mpps_create_refuses_bad_input_on_one_line(serve, tmp_path):
    assert_one_line_error(_mpps("create", _node(serve)), 2, "--modality is required")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert_one_line_error(_mpps("create", _node(serve), "--from-worklist", broken), 7, "not a JSON file")
    assert_one_line_error(_mpps("get", _node(serve), "1.2.x"), 2, "'1.2.x' is not a UID")
    assert_one_line_error(_mpps("set", _node(serve), "1.2.3", "--status", "IN PROGRESS"), 2,
                          "give COMPLETED or DISCONTINUED")
    assert_one_line_error(_mpps("set", _node(serve), "1.2.3", "--status", "COMPLETED", "--instances",
                                tmp_path / "none"), 7, "does not exist")


def test_steps_over_http(serve):
    uid = "1.2.826.0.1.3680043.10.543.300"
    assert _mpps("create", _node(serve), "--modality", "CR", "--uid", uid).returncode == 0
    base = f"http://127.0.0.1:{serve.settings.web.port}/mpps"
    with httpx.Client(timeout=10) as http:
        one = http.get(f"{base}/{uid}")
        listed = http.get(base, params={"status": "in progress"})
        unknown = http.get(f"{base}/1.2.3.404")
        bad = http.get(base, params={"status": "PAUSED"})
    assert one.status_code == 200
    assert (one.json()["status"], one.json()["created_by"]) == ("IN PROGRESS", "MODALITY")
    assert one.json()["step"]["00080060"]["Value"] == ["CR"]
    assert uid in [s["uid"] for s in listed.json()]
    assert all(s["status"] == "IN PROGRESS" for s in listed.json())
    assert unknown.status_code == 404 and bad.status_code == 400
