"""MPPS against an independent peer: dcmjs-dimse (npm, on Node.js), both directions —
``pacskit mpps`` with dcmjs-dimse's SCP, and dcmjs-dimse's SCU with ``pacskit serve``."""

from __future__ import annotations

import json

import pytest
from clirunner import assert_one_line_error, run_cli
from pydicom import Dataset
from served import ARCHIVE_AET, served_archive

from pacskit.archive.worklist import Worklist
from pacskit.mpps.build import (
    InstanceRef,
    StepFields,
    create_from_fields,
    final_set,
    listed_instances,
)
from pacskit.mpps.model import StepStatus, check_create
from pacskit.settings import NodeConfig
from pacskit.testing.corpus import generate_corpus
from pacskit.testing.dcmjs import DcmjsMppsScp, dcmjs_mpps_scu
from pacskit.worklist import ItemStatus
from pacskit.worklist.items import from_fields, item_uid

CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("dcmjs-corpus"), patients=1, studies_per_patient=1,
                           series_per_study=1, instances_per_series=2, rows=8, columns=8, modalities=("CT",))


@pytest.fixture(scope="module")
def dcmjs_scp(tmp_path_factory):
    with DcmjsMppsScp(tmp_path_factory.mktemp("dcmjs-scp")) as peer:
        yield peer


def _item(study_uid: str) -> Dataset:
    return from_fields({
        "PatientID": "PD1", "PatientName": "DOE^JOHN", "AccessionNumber": "ACCD1", "StudyInstanceUID": study_uid,
        "RequestedProcedureID": "RPD1", "RequestedProcedureDescription": "CT chest",
        "ScheduledProcedureStepSequence.ScheduledStationAETitle": "CT9",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate": "20261202",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime": "1000",
        "ScheduledProcedureStepSequence.Modality": "CT",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepID": "SPSD1",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepDescription": "chest plain",
    })


def test_pacskit_mpps_with_the_dcmjs_dimse_scp(dcmjs_scp, corpus, tmp_path):
    item_file = tmp_path / "item.json"
    item_file.write_text(json.dumps(_item(corpus[0].study_uid).to_json_dict()))
    created = run_cli("mpps", "create", dcmjs_scp.address, "--from-worklist", item_file, "--aet", "PACSKIT")
    assert created.returncode == 0, created.stderr
    uid = created.stdout.strip()
    files = [a for c in corpus for a in ("--instances", str(c.path))]
    done = run_cli("mpps", "set", dcmjs_scp.address, uid, "--status", "COMPLETED", *files, "--aet", "PACSKIT")
    assert done.returncode == 0, done.stderr
    got = run_cli("mpps", "get", dcmjs_scp.address, uid, "--format", "json", "--aet", "PACSKIT")
    assert got.returncode == 0, got.stderr
    again = run_cli("mpps", "set", dcmjs_scp.address, uid, "--status", "DISCONTINUED", "--aet", "PACSKIT")
    assert_one_line_error(again, 21, "0x0110 (Processing Failure): Performed Procedure Step Object may no longer")

    create, set_, get, refused = [r for r in dcmjs_scp.requests() if r["uid"] == uid]
    assert (create["op"], create["calling"], create["status"]) == ("N-CREATE", "PACSKIT", 0)
    sent = Dataset.from_json(create["dataset"])
    assert check_create(sent) is StepStatus.IN_PROGRESS
    scheduled = sent.ScheduledStepAttributesSequence[0]
    assert (scheduled.StudyInstanceUID, scheduled.AccessionNumber, scheduled.ScheduledProcedureStepID) == \
        (corpus[0].study_uid, "ACCD1", "SPSD1")
    assert (sent.PatientID, sent.Modality, sent.PerformedStationAETitle) == ("PD1", "CT", "CT9")
    assert "PatientName" in sent and not sent.PatientName
    assert (set_["op"], set_["status"]) == ("N-SET", 0)
    modifications = Dataset.from_json(set_["dataset"])
    assert modifications.PerformedProcedureStepStatus == "COMPLETED"
    assert sorted(r.sop_instance_uid for r in listed_instances(modifications)) == \
        sorted(c.sop_instance_uid for c in corpus)
    assert json.loads(got.stdout)["status"] == "COMPLETED" and json.loads(got.stdout)["instances"] == 2
    assert (get["op"], refused["op"], refused["status"]) == ("N-GET", "N-SET", 0x0110)


def test_the_dcmjs_dimse_scu_with_pacskit_serve(tmp_path, corpus):
    known = {"dcmjs": NodeConfig(ae_title="DCMJSSCU", host="127.0.0.1", port=1)}
    with served_archive(tmp_path, [], nodes=known) as archive:
        item = Worklist(archive.index).add(_item(corpus[0].study_uid), item_uid(_item(corpus[0].study_uid)))
        step = create_from_fields(StepFields(modality="CT", station_aet="CT9", patient_id="PD1",
                                             study_uid=corpus[0].study_uid, accession="ACCD1",
                                             requested_procedure_id="RPD1", step_id="SPSD1"))
        lacking = create_from_fields(StepFields(modality="CT", station_aet="CT9"))
        del lacking.Modality
        uid = "1.2.826.0.1.3680043.10.543.200"
        ending = final_set(StepStatus.COMPLETED, [InstanceRef(CT, c.sop_instance_uid, c.series_uid) for c in corpus])
        plan = [
            {"op": "create", "uid": uid, "dataset": step.to_json_dict()},
            {"op": "get", "uid": uid},
            {"op": "create", "uid": uid, "dataset": step.to_json_dict()},
            {"op": "create", "uid": "1.2.826.0.1.3680043.10.543.201", "dataset": lacking.to_json_dict()},
            {"op": "set", "uid": "1.2.826.0.1.3680043.10.543.404", "dataset": ending.to_json_dict()},
            {"op": "set", "uid": uid, "dataset": ending.to_json_dict()},
            {"op": "set", "uid": uid, "dataset": ending.to_json_dict()},
            {"op": "get", "uid": uid},
        ]
        answers = dcmjs_mpps_scu("127.0.0.1", archive.settings.port, ARCHIVE_AET, "DCMJSSCU", plan)
        stored = archive.mpps.get(uid)
        worklist_status = Worklist(archive.index).get(item.uid).status
    assert [a["status"] for a in answers] == [0x0000, 0x0000, 0x0111, 0x0120, 0x0112, 0x0000, 0x0110, 0x0000]
    assert answers[1]["dataset"]["00400252"]["Value"] == ["IN PROGRESS"]
    assert answers[6]["comment"] == "Performed Procedure Step Object may no longer be updated"
    assert answers[7]["dataset"]["00400252"]["Value"] == ["COMPLETED"]
    assert stored.status is StepStatus.COMPLETED and stored.created_by == "DCMJSSCU"
    assert len(listed_instances(stored.dataset)) == 2
    assert worklist_status is ItemStatus.COMPLETED
