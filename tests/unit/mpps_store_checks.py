"""Checks of the archive's performed procedure steps that every database backend must
pass (SQLite in the unit tests, PostgreSQL in the integration tests)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from pydicom import Dataset
from pydicom.uid import generate_uid

from pacskit.archive.index import Index
from pacskit.archive.mpps import PerformedSteps
from pacskit.archive.worklist import Worklist
from pacskit.mpps.build import InstanceRef, StepFields, create_from_fields, final_set
from pacskit.mpps.model import StepRefused, StepStatus
from pacskit.worklist import ItemStatus
from pacskit.worklist.items import from_fields, item_uid

CT = "1.2.840.10008.5.1.4.1.1.2"


def _item(study: str, step_id: str) -> Dataset:
    return from_fields({
        "PatientID": "P1", "PatientName": "DOE^JANE", "StudyInstanceUID": study, "RequestedProcedureID": "RP1",
        "RequestedProcedureDescription": "CT head", "AccessionNumber": "A1",
        "ScheduledProcedureStepSequence.ScheduledStationAETitle": "CT1",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate": "20261202",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime": "0900",
        "ScheduledProcedureStepSequence.Modality": "CT",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepID": step_id,
        "ScheduledProcedureStepSequence.ScheduledProcedureStepDescription": "head"})


def _step(study: str, step_id: str = "", accession: str = "A1") -> Dataset:
    return create_from_fields(StepFields(modality="CT", station_aet="CT1", patient_id="P1", study_uid=study,
                                         accession=accession, requested_procedure_id="RP1", step_id=step_id))


def check_a_step_is_kept_and_its_worklist_item_follows(index: Index) -> None:
    steps, worklist = PerformedSteps(index), Worklist(index)
    study = generate_uid()
    item = worklist.add(_item(study, "S1"), item_uid(_item(study, "S1")))
    uid = generate_uid()
    _, moves = steps.create(uid, _step(study, "S1"), "MODALITY")
    assert [(m.item_uid, m.new) for m in moves] == [(item.uid, ItemStatus.STARTED)]
    assert worklist.get(item.uid).status is ItemStatus.STARTED
    done, moves = steps.set(uid, final_set(StepStatus.COMPLETED, [InstanceRef(CT, "1.2.3", "1.2.4")]))
    assert done.status is StepStatus.COMPLETED
    assert worklist.get(item.uid).status is ItemStatus.COMPLETED
    again = steps.get(uid)
    assert (again.status, again.created_by, len(again.dataset.PerformedSeriesSequence)) == \
        (StepStatus.COMPLETED, "MODALITY", 1)
    assert [s.uid for s in steps.steps(StepStatus.COMPLETED)] == [uid]


def check_an_item_is_linked_by_accession_without_a_step_id(index: Index) -> None:
    steps, worklist = PerformedSteps(index), Worklist(index)
    study = generate_uid()
    item = worklist.add(_item(study, "S2"), item_uid(_item(study, "S2")))
    uid = generate_uid()
    steps.create(uid, _step(study, accession="A1"))
    assert worklist.get(item.uid).status is ItemStatus.STARTED
    steps.set(uid, final_set(StepStatus.DISCONTINUED, []))
    assert worklist.get(item.uid).status is ItemStatus.DISCONTINUED


def check_an_item_that_cannot_move_stays_and_the_step_is_kept(index: Index) -> None:
    steps, worklist = PerformedSteps(index), Worklist(index)
    study = generate_uid()
    item = worklist.add(_item(study, "S3"), item_uid(_item(study, "S3")), status=ItemStatus.COMPLETED)
    uid = generate_uid()
    stored, moves = steps.create(uid, _step(study, "S3"))
    assert [(m.item_uid, m.old, m.new, m.refused) for m in moves] == \
        [(item.uid, ItemStatus.COMPLETED, ItemStatus.STARTED, True)]
    assert worklist.get(item.uid).status is ItemStatus.COMPLETED
    assert steps.get(uid).status is StepStatus.IN_PROGRESS


def check_a_refused_request_changes_nothing(index: Index) -> None:
    steps = PerformedSteps(index)
    uid = generate_uid()
    steps.create(uid, _step(generate_uid()))
    with pytest.raises(StepRefused) as duplicate:
        steps.create(uid, _step(generate_uid()))
    assert duplicate.value.status == 0x0111
    change = Dataset()
    change.Modality = "MR"
    with pytest.raises(StepRefused):
        steps.set(uid, change)
    with pytest.raises(StepRefused) as unknown:
        steps.set(generate_uid(), final_set(StepStatus.COMPLETED, []))
    assert unknown.value.status == 0x0112
    assert steps.get(uid).dataset.Modality == "CT"
    assert steps.get(uid).status is StepStatus.IN_PROGRESS


def check_of_concurrent_final_sets_one_wins(index: Index) -> None:
    steps = PerformedSteps(index)
    uid = generate_uid()
    steps.create(uid, _step(generate_uid()))

    def finish(status: StepStatus) -> int:
        try:
            steps.set(uid, final_set(status, []))
        except StepRefused as refused:
            return refused.status
        return 0

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(finish, [StepStatus.COMPLETED, StepStatus.DISCONTINUED] * 4))
    assert outcomes.count(0) == 1
    assert outcomes.count(0x0110) == 7
    assert steps.get(uid).status.is_final


CHECKS = [check_a_step_is_kept_and_its_worklist_item_follows, check_an_item_is_linked_by_accession_without_a_step_id,
          check_an_item_that_cannot_move_stays_and_the_step_is_kept, check_a_refused_request_changes_nothing,
          check_of_concurrent_final_sets_one_wins]
