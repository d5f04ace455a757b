"""The datasets an MPPS SCU sends (PS3.4 F.7.2.1.2, F.7.2.2.2): the N-CREATE of a step
IN PROGRESS, from a worklist item or from fields, and the final N-SET to COMPLETED or
DISCONTINUED with its Performed Series Sequence (pure).

Patient's Name is Type 2 at N-CREATE: it is sent empty unless names are allowed (and
the worklist item has one). Person names of the staff (performing physician, operators)
are sent empty too: pacskit does not show or send names it was not given to send.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydicom import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from pacskit.mpps.model import StepStatus
from pacskit.worklist.model import STEP_SEQUENCE

UNSPECIFIED_PROTOCOL = "UNSPECIFIED"
"""Protocol Name (Type 1 in each Performed Series item) when neither the instances'
Protocol Name nor their Series Description gives one."""


@dataclass(frozen=True)
class StepFields:
    """What a step is created from, without a worklist item (F.7.2.1.2 Note 3: the SCU
    may make the Study Instance UID; the rest of the scheduled attributes may be empty)."""

    modality: str
    station_aet: str
    patient_id: str = ""
    study_uid: str = ""
    accession: str = ""
    procedure: str = ""
    requested_procedure_id: str = ""
    step_id: str = ""
    station_name: str = ""


@dataclass(frozen=True)
class InstanceRef:
    """One instance a step produced, as the Performed Series Sequence lists it."""

    sop_class_uid: str
    sop_instance_uid: str
    series_uid: str
    series_description: str = ""
    protocol_name: str = ""
    study_uid: str = ""


def new_uid() -> str:
    """A UID of the 2.25 arc (PS3.5 B.2), from a random UUID."""
    return f"2.25.{uuid.uuid4().int}"


def create_from_fields(fields: StepFields, *, pps_id: str | None = None, now: datetime | None = None) -> Dataset:
    """The N-CREATE attributes of a step IN PROGRESS started now, from ``fields``."""
    scheduled = Dataset()
    scheduled.StudyInstanceUID = fields.study_uid or new_uid()
    scheduled.ReferencedStudySequence = Sequence()
    scheduled.AccessionNumber = fields.accession
    scheduled.RequestedProcedureID = fields.requested_procedure_id
    scheduled.RequestedProcedureDescription = fields.procedure
    scheduled.ScheduledProcedureStepID = fields.step_id
    scheduled.ScheduledProcedureStepDescription = fields.procedure
    scheduled.ScheduledProtocolCodeSequence = Sequence()
    patient = Dataset()
    patient.PatientName = ""
    patient.PatientID = fields.patient_id
    patient.PatientBirthDate = ""
    patient.PatientSex = ""
    return _create([scheduled], patient, modality=fields.modality, station_aet=fields.station_aet,
                   station_name=fields.station_name, description=fields.procedure,
                   procedure_codes=Sequence(), pps_id=pps_id, now=now)


def create_from_worklist_item(item: Dataset, *, station_aet: str | None = None, modality: str | None = None,
                              pps_id: str | None = None, allow_patient_names: bool = False,
                              now: datetime | None = None) -> Dataset:
    """The N-CREATE attributes of a step IN PROGRESS started now for a worklist item
    (PS3.4 K.6.1; its first scheduled step): the Scheduled Step Attributes Sequence from
    the item, the patient's ID, birth date and sex, station and modality from the step
    unless given. Patient's Name only when ``allow_patient_names``, else empty."""
    steps = item.get(STEP_SEQUENCE) or [Dataset()]
    step = steps[0]
    scheduled = Dataset()
    scheduled.StudyInstanceUID = text_of(item, "StudyInstanceUID") or new_uid()
    scheduled.ReferencedStudySequence = Sequence(_copied(item.get("ReferencedStudySequence") or []))
    scheduled.AccessionNumber = text_of(item, "AccessionNumber")
    for keyword in ("IssuerOfAccessionNumberSequence", "RequestedProcedureCodeSequence"):
        if item.get(keyword):
            setattr(scheduled, keyword, Sequence(_copied(item.get(keyword))))
    scheduled.RequestedProcedureID = text_of(item, "RequestedProcedureID")
    scheduled.RequestedProcedureDescription = text_of(item, "RequestedProcedureDescription")
    scheduled.ScheduledProcedureStepID = text_of(step, "ScheduledProcedureStepID")
    scheduled.ScheduledProcedureStepDescription = text_of(step, "ScheduledProcedureStepDescription")
    scheduled.ScheduledProtocolCodeSequence = Sequence(_copied(step.get("ScheduledProtocolCodeSequence") or []))
    patient = Dataset()
    patient.PatientName = item.get("PatientName", "") if allow_patient_names else ""
    patient.PatientID = text_of(item, "PatientID")
    if "IssuerOfPatientID" in item:
        patient.IssuerOfPatientID = text_of(item, "IssuerOfPatientID")
    patient.PatientBirthDate = text_of(item, "PatientBirthDate")
    patient.PatientSex = text_of(item, "PatientSex")
    if "SpecificCharacterSet" in item and allow_patient_names:
        patient.SpecificCharacterSet = item.SpecificCharacterSet
    description = scheduled.ScheduledProcedureStepDescription or scheduled.RequestedProcedureDescription
    return _create([scheduled], patient, modality=modality or text_of(step, "Modality"),
                   station_aet=station_aet or text_of(step, "ScheduledStationAETitle"),
                   station_name=text_of(step, "ScheduledStationName"), description=description,
                   procedure_codes=Sequence(_copied(item.get("RequestedProcedureCodeSequence") or [])),
                   pps_id=pps_id, now=now)


def _create(scheduled: list[Dataset], patient: Dataset, *, modality: str, station_aet: str, station_name: str,
            description: str, procedure_codes: Sequence, pps_id: str | None, now: datetime | None) -> Dataset:
    now = now or datetime.now()
    dataset = Dataset()
    if "SpecificCharacterSet" in patient:
        dataset.SpecificCharacterSet = patient.SpecificCharacterSet
    dataset.ScheduledStepAttributesSequence = Sequence(scheduled)
    for element in patient:
        if element.keyword != "SpecificCharacterSet":
            dataset.add(element)
    dataset.ReferencedPatientSequence = Sequence()
    dataset.PerformedProcedureStepID = pps_id or now.strftime("%Y%m%d%H%M%S")
    dataset.PerformedStationAETitle = station_aet
    dataset.PerformedStationName = station_name
    dataset.PerformedLocation = ""
    dataset.PerformedProcedureStepStartDate = now.strftime("%Y%m%d")
    dataset.PerformedProcedureStepStartTime = now.strftime("%H%M%S")
    dataset.PerformedProcedureStepStatus = StepStatus.IN_PROGRESS.value
    dataset.PerformedProcedureStepDescription = description
    dataset.PerformedProcedureTypeDescription = ""
    dataset.ProcedureCodeSequence = procedure_codes
    dataset.PerformedProcedureStepEndDate = ""
    dataset.PerformedProcedureStepEndTime = ""
    dataset.Modality = modality
    dataset.StudyID = ""
    dataset.PerformedProtocolCodeSequence = Sequence()
    dataset.PerformedSeriesSequence = Sequence()
    return dataset


def final_set(status: StepStatus, instances: Iterable[InstanceRef], *, retrieve_ae: str = "",
              protocol: str = "", now: datetime | None = None) -> Dataset:
    """The N-SET that ends a step (F.7.2.2.2): its status, end date and time, and the
    Performed Series Sequence listing ``instances`` by series — images in Referenced
    Image Sequence, other objects in Referenced Non-Image Composite SOP Instance
    Sequence. With no instance, one series item with no reference: a series must exist
    for every step (Table F.7.2-1, Note 2)."""
    if not status.is_final:
        raise ValueError("a final N-SET sets COMPLETED or DISCONTINUED")
    now = now or datetime.now()
    series: dict[str, list[InstanceRef]] = {}
    for instance in instances:
        series.setdefault(instance.series_uid, []).append(instance)
    items = [_series_item(uid, refs, retrieve_ae, protocol) for uid, refs in series.items()]
    if not items:
        items = [_series_item(new_uid(), [], retrieve_ae, protocol)]
    modifications = Dataset()
    modifications.PerformedProcedureStepStatus = status.value
    modifications.PerformedProcedureStepEndDate = now.strftime("%Y%m%d")
    modifications.PerformedProcedureStepEndTime = now.strftime("%H%M%S")
    modifications.PerformedSeriesSequence = Sequence(items)
    return modifications


def listed_instances(step: Dataset) -> list[InstanceRef]:
    """The instances a step's Performed Series Sequence lists."""
    found = []
    for item in step.get("PerformedSeriesSequence") or []:
        for keyword in ("ReferencedImageSequence", "ReferencedNonImageCompositeSOPInstanceSequence"):
            for ref in item.get(keyword) or []:
                found.append(InstanceRef(text_of(ref, "ReferencedSOPClassUID"), text_of(ref, "ReferencedSOPInstanceUID"),
                                         text_of(item, "SeriesInstanceUID")))
    return found


def study_uids(step: Dataset) -> list[str]:
    """The Study Instance UIDs of a step's Scheduled Step Attributes Sequence."""
    uids = [text_of(item, "StudyInstanceUID") for item in step.get("ScheduledStepAttributesSequence") or []]
    return list(dict.fromkeys(u for u in uids if u))


def is_image(sop_class_uid: str) -> bool:
    """Whether a SOP class is an image storage class (its name says so, PS3.6 A.1)."""
    return "Image Storage" in UID(sop_class_uid).name


def _series_item(series_uid: str, refs: list[InstanceRef], retrieve_ae: str, protocol: str) -> Dataset:
    item = Dataset()
    item.PerformingPhysicianName = ""
    first = refs[0] if refs else InstanceRef("", "", series_uid)
    item.ProtocolName = first.protocol_name or first.series_description or protocol or UNSPECIFIED_PROTOCOL
    item.OperatorsName = ""
    item.SeriesInstanceUID = series_uid
    item.SeriesDescription = first.series_description
    item.RetrieveAETitle = retrieve_ae
    item.ReferencedImageSequence = Sequence([_reference(r) for r in refs if is_image(r.sop_class_uid)])
    item.ReferencedNonImageCompositeSOPInstanceSequence = Sequence(
        [_reference(r) for r in refs if not is_image(r.sop_class_uid)])
    return item


def _reference(ref: InstanceRef) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ref.sop_class_uid
    item.ReferencedSOPInstanceUID = ref.sop_instance_uid
    return item


def _copied(items: Iterable[Dataset]) -> list[Dataset]:
    return [Dataset.from_json(item.to_json_dict()) for item in items]


def text_of(dataset: Dataset, keyword: str) -> str:
    """The value of ``keyword`` in ``dataset`` as stripped text ("" when absent or empty)."""
    value = dataset.get(keyword)
    return str(value).strip() if value not in (None, "") else ""
