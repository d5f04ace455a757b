"""The archive's Modality Performed Procedure Steps (PS3.4 Annex F): N-CREATE and N-SET
of the MPPS SOP Class, N-GET of the MPPS Retrieve SOP Class, the steps kept in the index
database, and the worklist items they perform moved on with them.

Every request is checked against PS3.4 Table F.7.2-1 (:mod:`pacskit.mpps.model`) before
anything is written; a refused request leaves the stored step as it was. An N-SET reads,
checks and writes the step in one write transaction (a PostgreSQL row lock, SQLite's
single writer), and the linked worklist items (:meth:`PerformedSteps.linked_items`) move
in the same transaction: IN PROGRESS makes them STARTED, COMPLETED and DISCONTINUED end
them. Every outcome is a line of serve's log, which names steps by UID, never a patient.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydicom import Dataset
from pydicom.charset import python_encoding
from pynetdicom import build_context
from pynetdicom.presentation import PresentationContext
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from pacskit.archive.index import Index
from pacskit.archive.schema import Instance, PerformedStep, Series, Study, WorklistItem
from pacskit.archive.uids import canonical_uid
from pacskit.mpps.build import InstanceRef, listed_instances, new_uid, text_of
from pacskit.mpps.model import (
    MPPS_RETRIEVE_SOP_CLASS,
    MPPS_SOP_CLASS,
    StepRefused,
    StepStatus,
    check_create,
    check_set,
    status_of,
)
from pacskit.net.acceptor import DimseStatus, Peer
from pacskit.net.commands import N_CREATE_RQ, N_GET_RQ, N_SET_RQ
from pacskit.net.normalized import NormalizedRequest, NormalizedResponse
from pacskit.settings import Operation
from pacskit.worklist.model import ItemStatus

LOG = logging.getLogger("pacskit.archive")

DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_SOP_INSTANCE = 0x0112
INVALID_OBJECT_INSTANCE = 0x0117
UNRECOGNIZED_OPERATION = 0x0211
UTF8 = "ISO_IR 192"
ERROR_COMMENT_LENGTH = 64
SYNTAXES = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"]


@dataclass(frozen=True)
class StoredStep:
    """One performed procedure step as the archive keeps it.

    Attributes:
        uid: its SOP Instance UID.
        status: its Performed Procedure Step Status.
        dataset: its attributes, as created and set.
        created_by: the calling AE title of the N-CREATE.
        created_at, updated_at: when (UTC).
    """

    uid: str
    status: StepStatus
    dataset: Dataset
    created_by: str
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """``{"uid", "status", "created_by", "created", "updated", "step"}``, the step in
        DICOM JSON (PS3.18 F.2)."""
        return {"uid": self.uid, "status": self.status.value, "created_by": self.created_by,
                "created": self.created_at.isoformat() + "Z", "updated": self.updated_at.isoformat() + "Z",
                "step": self.dataset.to_json_dict()}


@dataclass(frozen=True)
class WorklistMove:
    """A worklist item a step moved on (or could not: ``refused``)."""

    item_uid: str
    old: ItemStatus
    new: ItemStatus
    refused: bool = False


class PerformedSteps:
    """The performed procedure steps of one index."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def create(self, uid: str, dataset: Dataset, created_by: str = "") -> tuple[StoredStep, list[WorklistMove]]:
        """Keep a new step IN PROGRESS (F.7.2.1.3) and start its worklist items.

        Raises:
            StepRefused: the attributes fail :func:`~pacskit.mpps.model.check_create`,
                or a step ``uid`` exists (0x0111, Duplicate SOP Instance).
        """
        check_create(dataset)
        stored = _stored_form(dataset)
        now = _now()
        first = (stored.get("ScheduledStepAttributesSequence") or [Dataset()])[0]
        row = {"uid": uid, "status": StepStatus.IN_PROGRESS.value, "study_uid": text_of(first, "StudyInstanceUID")[:64],
               "accession": text_of(first, "AccessionNumber")[:64], "patient_id": text_of(stored, "PatientID")[:64],
               "modality": text_of(stored, "Modality")[:16], "station_aet": text_of(stored, "PerformedStationAETitle")[:16],
               "created_by": created_by[:16], "attributes": json.dumps(stored.to_json_dict()),
               "created_at": now, "updated_at": now}
        try:
            with self.index.transaction() as conn:
                if conn.execute(select(PerformedStep.id).where(PerformedStep.uid == uid)).first() is not None:
                    raise StepRefused(DUPLICATE_SOP_INSTANCE, "a step with this SOP Instance UID exists")
                conn.execute(insert(PerformedStep).values(**row))
                moves = _follow(conn, stored, StepStatus.IN_PROGRESS)
        except IntegrityError:
            raise StepRefused(DUPLICATE_SOP_INSTANCE, "a step with this SOP Instance UID exists") from None
        return StoredStep(uid, StepStatus.IN_PROGRESS, stored, created_by, now, now), moves

    def set(self, uid: str, modifications: Dataset) -> tuple[StoredStep, list[WorklistMove]]:
        """Apply an N-SET to a stored step (F.7.2.2.3) and move its worklist items on.

        Raises:
            StepRefused: no such step (0x0112), or the N-SET fails
                :func:`~pacskit.mpps.model.check_set`; the step is left as it was.
        """
        with self.index.transaction() as conn:
            step = conn.execute(select(_TABLE).where(PerformedStep.uid == uid).with_for_update()).first()
            if step is None:
                raise StepRefused(NO_SUCH_SOP_INSTANCE, "no such Performed Procedure Step")
            merged = _stored_form(check_set(Dataset.from_json(json.loads(step.attributes)), modifications))
            status = status_of(merged) or StepStatus.IN_PROGRESS
            now = _now()
            conn.execute(update(PerformedStep).where(PerformedStep.uid == uid).values(
                status=status.value, attributes=json.dumps(merged.to_json_dict()), updated_at=now))
            moves = _follow(conn, merged, status) if status.value != step.status else []
            created_by, created_at = step.created_by, step.created_at
        return StoredStep(uid, status, merged, created_by, created_at, now), moves

    def get(self, uid: str) -> StoredStep | None:
        """The step ``uid``, if the archive has it."""
        with self.index.engine.connect() as conn:
            row = conn.execute(select(_TABLE).where(PerformedStep.uid == uid)).first()
        return _step(row) if row is not None else None

    def steps(self, status: StepStatus | None = None) -> list[StoredStep]:
        """Every step (or those in ``status``), oldest first."""
        statement = select(_TABLE).order_by(PerformedStep.id)
        if status is not None:
            statement = statement.where(PerformedStep.status == status.value)
        with self.index.engine.connect() as conn:
            return [_step(row) for row in conn.execute(statement)]

    def study_instances(self, study_uids: list[str]) -> list[InstanceRef]:
        """Every instance the archive holds in the studies ``study_uids``."""
        statement = (select(Instance.sop_class_uid, Instance.sop_uid, Series.series_uid, Study.study_uid)
                     .join(Series, Instance.series_fk == Series.id).join(Study, Series.study_fk == Study.id)
                     .where(Study.study_uid.in_(study_uids)).order_by(Instance.id))
        with self.index.engine.connect() as conn:
            return [InstanceRef(row.sop_class_uid, row.sop_uid, row.series_uid, study_uid=row.study_uid)
                    for row in conn.execute(statement)]

    def series_details(self, study_uids: list[str]) -> dict[str, Dataset]:
        """The indexed attributes of each series of the studies ``study_uids``, by UID."""
        statement = (select(Series.series_uid, Series.attributes).join(Study, Series.study_fk == Study.id)
                     .where(Study.study_uid.in_(study_uids)))
        with self.index.engine.connect() as conn:
            return {row.series_uid: Dataset.from_json(json.loads(row.attributes or "{}")) for row in conn.execute(statement)}


class _StepService:
    """A normalized service over the archive's steps, under the ``mpps`` permission."""

    sop_class_uid: str
    operation: Operation = "mpps"

    def __init__(self, steps: PerformedSteps) -> None:
        self.steps = steps

    def contexts(self) -> list[PresentationContext]:
        return [build_context(self.sop_class_uid, SYNTAXES)]


class MppsService(_StepService):
    """The MPPS SOP Class in ``pacskit serve``: N-CREATE and N-SET (PS3.4 F.7.1); any
    other operation is answered 0x0211 (Unrecognized Operation)."""

    sop_class_uid = MPPS_SOP_CLASS

    def serve(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        if request.command_field == N_CREATE_RQ:
            return self._create(peer, request)
        if request.command_field == N_SET_RQ:
            return self._set(peer, request)
        raise DimseStatus(UNRECOGNIZED_OPERATION, f"{request.operation} is not an operation of MPPS")

    def _create(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        uid = _instance_uid(request.sop_instance_uid, peer, "N-CREATE") if request.sop_instance_uid else new_uid()
        try:
            stored, moves = self.steps.create(uid, request.dataset or Dataset(), peer.ae_title)
        except StepRefused as refusal:
            raise _refused("N-CREATE", uid, peer, refusal) from None
        LOG.info("MPPS %s created by %s: IN PROGRESS, study %s", uid, peer.ae_title,
                 text_of((stored.dataset.get("ScheduledStepAttributesSequence") or [Dataset()])[0], "StudyInstanceUID"))
        _log_moves(uid, moves)
        return NormalizedResponse(sop_instance_uid=uid)

    def _set(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        uid = _instance_uid(request.sop_instance_uid, peer, "N-SET")
        try:
            stored, moves = self.steps.set(uid, request.dataset or Dataset())
        except StepRefused as refusal:
            raise _refused("N-SET", uid, peer, refusal) from None
        LOG.info("MPPS %s set by %s: %s, %d instances listed", uid, peer.ae_title, stored.status.value,
                 len(listed_instances(stored.dataset)))
        _log_moves(uid, moves)
        return NormalizedResponse(sop_instance_uid=uid)


class MppsRetrieveService(_StepService):
    """The MPPS Retrieve SOP Class in ``pacskit serve``: N-GET of a step's attributes
    (PS3.4 F.8), all of them or those the Attribute Identifier List names."""

    sop_class_uid = MPPS_RETRIEVE_SOP_CLASS

    def serve(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        if request.command_field != N_GET_RQ:
            raise DimseStatus(UNRECOGNIZED_OPERATION, f"{request.operation} is not an operation of MPPS Retrieve")
        uid = _instance_uid(request.sop_instance_uid, peer, "N-GET")
        stored = self.steps.get(uid)
        if stored is None:
            raise _refused("N-GET", uid, peer, StepRefused(NO_SUCH_SOP_INSTANCE, "no such Performed Procedure Step"))
        answer = stored.dataset
        if request.attributes:
            answer = Dataset()
            for element in stored.dataset:
                if element.tag in request.attributes or element.keyword == "SpecificCharacterSet":
                    answer.add(element)
        return NormalizedResponse(sop_instance_uid=uid, dataset=answer)


def _instance_uid(value: str, peer: Peer, operation: str) -> str:
    uid = canonical_uid(value)
    if uid is None:
        LOG.warning("MPPS %s from %s refused: %r is not a UID", operation, peer.ae_title, value[:80])
        raise DimseStatus(INVALID_OBJECT_INSTANCE, "the SOP Instance UID is not a UID")
    return uid


def _refused(operation: str, uid: str, peer: Peer, refusal: StepRefused) -> DimseStatus:
    tags = ", ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in refusal.tags)
    LOG.warning("MPPS %s of %s from %s refused: 0x%04X %s%s", operation, uid, peer.ae_title, refusal.status,
                refusal.comment, f" {tags}" if tags else "")
    return DimseStatus(refusal.status, refusal.comment[:ERROR_COMMENT_LENGTH], offending=refusal.tags,
                       error_id=refusal.error_id)


def _log_moves(uid: str, moves: list[WorklistMove]) -> None:
    for move in moves:
        if move.refused:
            LOG.warning("worklist item %s stays %s: it cannot become %s (MPPS %s)", move.item_uid,
                        move.old.value, move.new.value, uid)
        else:
            LOG.info("worklist item %s: %s -> %s (MPPS %s)", move.item_uid, move.old.value, move.new.value, uid)


def linked_items(conn: Connection, step: Dataset) -> list[tuple[str, str]]:
    """(UID, status) of the worklist items a step performs: for each item of its
    Scheduled Step Attributes Sequence, those of its Study Instance UID with its
    Scheduled Procedure Step ID (and Requested Procedure ID, when given), or, without a
    step ID, with its accession number. A step made without a worklist item links none."""
    found: dict[str, str] = {}
    for scheduled in step.get("ScheduledStepAttributesSequence") or []:
        study, step_id = text_of(scheduled, "StudyInstanceUID"), text_of(scheduled, "ScheduledProcedureStepID")
        procedure, accession = text_of(scheduled, "RequestedProcedureID"), text_of(scheduled, "AccessionNumber")
        if not study or not (step_id or accession):
            continue
        statement = select(WorklistItem.uid, WorklistItem.status).where(WorklistItem.study_uid == study)
        if step_id:
            statement = statement.where(WorklistItem.step_id == step_id)
            if procedure:
                statement = statement.where(WorklistItem.requested_procedure_id == procedure)
        else:
            statement = statement.where(WorklistItem.accession == accession)
        found.update({str(row.uid): str(row.status) for row in conn.execute(statement)})
    return list(found.items())


def _follow(conn: Connection, step: Dataset, status: StepStatus) -> list[WorklistMove]:
    """Move the step's worklist items to the status ``status`` stands for, where they may go."""
    wanted = status.worklist_status
    moves = []
    for uid, current in linked_items(conn, step):
        old = ItemStatus(current)
        if old is wanted:
            continue
        if not old.can_become(wanted):
            moves.append(WorklistMove(uid, old, wanted, refused=True))
            continue
        conn.execute(update(WorklistItem).where(WorklistItem.uid == uid).values(status=wanted.value, updated_at=_now()))
        moves.append(WorklistMove(uid, old, wanted))
    return moves


def _stored_form(dataset: Dataset) -> Dataset:
    """The step as kept: its text decoded, and UTF-8 as its character set when the one
    it came with cannot hold the text (an N-SET may bring text of another, F.7.2.2.3)."""
    stored = Dataset.from_json(dataset.to_json_dict())
    texts = json.dumps(stored.to_json_dict(), ensure_ascii=False)
    if not texts.isascii():
        names = stored.get("SpecificCharacterSet")
        codec = python_encoding.get(names) if isinstance(names, str) else None
        try:
            ok = codec is not None and bool(texts.encode(codec))
        except UnicodeEncodeError:
            ok = False
        if not ok:
            stored.SpecificCharacterSet = UTF8
    return stored


_TABLE = PerformedStep.__table__


def _step(row: Any) -> StoredStep:
    return StoredStep(row.uid, StepStatus(row.status), Dataset.from_json(json.loads(row.attributes)),
                      row.created_by, row.created_at, row.updated_at)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
