"""The MPPS checks of PS3.4 Table F.7.2-1 and the datasets pacskit's SCU sends (pure)."""

from __future__ import annotations

import pytest
from pydicom import Dataset
from pydicom.sequence import Sequence

from pacskit.mpps.build import (
    InstanceRef,
    StepFields,
    create_from_fields,
    create_from_worklist_item,
    final_set,
    listed_instances,
)
from pacskit.mpps.model import StepRefused, StepStatus, check_create, check_set
from pacskit.mpps.requirements import NOT_SETTABLE, TABLE
from pacskit.worklist.model import ItemStatus

CT = "1.2.840.10008.5.1.4.1.1.2"
SR = "1.2.840.10008.5.1.4.1.1.88.11"


def created() -> Dataset:
    return create_from_fields(StepFields(modality="CT", station_aet="CT1", patient_id="P1", accession="A1"))


def refusal(call, *args) -> StepRefused:
    with pytest.raises(StepRefused) as raised:
        call(*args)
    return raised.value


def test_the_table_has_the_standards_types():
    rows = {".".join(r.path): r for r in TABLE}
    assert (rows["ScheduledStepAttributesSequence"].create, rows["ScheduledStepAttributesSequence"].set) == ("1", None)
    assert rows["PerformedProcedureStepStatus"].set == "1"
    assert (rows["PerformedProcedureStepEndDate"].create, rows["PerformedProcedureStepEndDate"].final) == ("2", "1")
    assert rows["PerformedSeriesSequence.ProtocolName"].create == "1"
    assert {"PatientName", "PatientID", "Modality", "PerformedProcedureStepStartDate"} <= NOT_SETTABLE
    assert "PerformedSeriesSequence" not in NOT_SETTABLE


def test_what_pacskit_creates_passes_the_scps_check_and_sends_no_name():
    dataset = created()
    assert check_create(dataset) is StepStatus.IN_PROGRESS
    assert dataset.PatientName == "" and "PatientName" in dataset


def test_a_create_lacking_type_1_and_2_attributes_is_refused_0120_with_their_tags():
    dataset = created()
    del dataset.Modality
    del dataset.PatientID
    del dataset.ScheduledStepAttributesSequence[0].StudyInstanceUID
    raised = refusal(check_create, dataset)
    assert raised.status == 0x0120
    assert set(raised.tags) == {0x00080060, 0x00100020, 0x0020000D}


def test_an_empty_type_1_attribute_is_refused_0121():
    dataset = created()
    dataset.PerformedStationAETitle = ""
    raised = refusal(check_create, dataset)
    assert (raised.status, raised.tags) == (0x0121, (0x00400241,))


def test_a_create_not_in_progress_is_refused_0106():
    dataset = created()
    dataset.PerformedProcedureStepStatus = "COMPLETED"
    raised = refusal(check_create, dataset)
    assert (raised.status, raised.tags) == (0x0106, (0x00400252,))


def test_a_final_set_lists_images_and_other_objects_by_series():
    refs = [InstanceRef(CT, "1.1", "9.1", protocol_name="HEAD"), InstanceRef(CT, "1.2", "9.1"),
            InstanceRef(SR, "1.3", "9.2", series_description="report")]
    step = check_set(created(), final_set(StepStatus.COMPLETED, refs))
    first, second = step.PerformedSeriesSequence
    assert (first.SeriesInstanceUID, first.ProtocolName, len(first.ReferencedImageSequence)) == ("9.1", "HEAD", 2)
    assert (second.ProtocolName, len(second.ReferencedNonImageCompositeSOPInstanceSequence)) == ("report", 1)
    assert [r.sop_instance_uid for r in listed_instances(step)] == ["1.1", "1.2", "1.3"]
    assert step.PerformedProcedureStepStatus == "COMPLETED" and step.PatientID == "P1"


def test_a_discontinued_step_with_nothing_made_still_has_one_series():
    step = check_set(created(), final_set(StepStatus.DISCONTINUED, []))
    assert len(step.PerformedSeriesSequence) == 1
    assert listed_instances(step) == []


def test_a_set_after_a_final_status_is_refused_0110_a710():
    done = check_set(created(), final_set(StepStatus.COMPLETED, []))
    again = Dataset()
    again.PerformedProcedureStepDescription = "late"
    raised = refusal(check_set, done, again)
    assert (raised.status, raised.error_id) == (0x0110, 0xA710)


def test_a_set_of_an_attribute_the_table_does_not_allow_is_refused_0106():
    change = Dataset()
    change.PatientID = "OTHER"
    change.PerformedProcedureStepDescription = "fine"
    raised = refusal(check_set, created(), change)
    assert (raised.status, raised.tags) == (0x0106, (0x00100020,))


def test_a_set_of_an_unknown_status_is_refused_0106():
    change = Dataset()
    change.PerformedProcedureStepStatus = "PAUSED"
    assert refusal(check_set, created(), change).status == 0x0106


def test_a_final_set_without_end_time_or_series_is_refused_0120_or_0121():
    change = Dataset()
    change.PerformedProcedureStepStatus = "COMPLETED"
    raised = refusal(check_set, created(), change)
    assert raised.status == 0x0121
    assert set(raised.tags) == {0x00400250, 0x00400251, 0x00400340}
    bad_series = final_set(StepStatus.COMPLETED, [])
    del bad_series.PerformedSeriesSequence[0].SeriesInstanceUID
    raised = refusal(check_set, created(), bad_series)
    assert (raised.status, raised.tags) == (0x0120, (0x0020000E,))


def test_an_in_progress_set_may_fill_the_series_before_the_end():
    change = final_set(StepStatus.COMPLETED, [InstanceRef(CT, "1.1", "9.1")])
    change.PerformedProcedureStepStatus = "IN PROGRESS"
    step = check_set(created(), change)
    assert step.PerformedProcedureStepStatus == "IN PROGRESS" and len(step.PerformedSeriesSequence) == 1


def test_a_step_from_a_worklist_item_carries_its_scheduled_attributes_without_the_name():
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 100"
    item.PatientName = "MÜLLER^JÖRG"
    item.PatientID = "P7"
    item.PatientSex = "M"
    item.StudyInstanceUID = "1.2.3.4"
    item.AccessionNumber = "ACC7"
    item.RequestedProcedureID = "RP7"
    item.RequestedProcedureDescription = "CT head"
    step = Dataset()
    step.ScheduledStationAETitle = "CT7"
    step.Modality = "CT"
    step.ScheduledProcedureStepID = "SPS7"
    step.ScheduledProcedureStepDescription = "head plain"
    item.ScheduledProcedureStepSequence = Sequence([step])
    dataset = create_from_worklist_item(item)
    check_create(dataset)
    scheduled = dataset.ScheduledStepAttributesSequence[0]
    assert (scheduled.StudyInstanceUID, scheduled.AccessionNumber, scheduled.RequestedProcedureID,
            scheduled.ScheduledProcedureStepID) == ("1.2.3.4", "ACC7", "RP7", "SPS7")
    assert (dataset.Modality, dataset.PerformedStationAETitle, dataset.PatientID) == ("CT", "CT7", "P7")
    assert dataset.PatientName == "" and "SpecificCharacterSet" not in dataset
    named = create_from_worklist_item(item, allow_patient_names=True)
    assert str(named.PatientName) == "MÜLLER^JÖRG" and named.SpecificCharacterSet == "ISO_IR 100"


def test_statuses_move_forward_only_and_the_worklist_follows():
    assert StepStatus.IN_PROGRESS.can_become(StepStatus.COMPLETED)
    assert not StepStatus.COMPLETED.can_become(StepStatus.DISCONTINUED)
    assert StepStatus.parse("in_progress") is StepStatus.IN_PROGRESS
    assert [s.worklist_status for s in StepStatus] == [ItemStatus.STARTED, ItemStatus.COMPLETED,
                                                       ItemStatus.DISCONTINUED]
