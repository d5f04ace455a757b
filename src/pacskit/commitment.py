"""Storage Commitment Push Model (PS3.4 Annex J): the request and the report, as both the
SCU (``pacskit commit``) and the SCP (``pacskit serve``) read and write them.

The SCU asks with N-ACTION (Action Type ID 1, PS3.4 J.3.2) on the well-known instance
1.2.840.10008.1.20.1.1: a Transaction UID and the instances (Referenced SOP Sequence).
The SCP answers with N-EVENT-REPORT (J.3.3): Event Type ID 1 when every instance is
committed, 2 when some failed (Failed SOP Sequence, each with its Failure Reason).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydicom import Dataset
from pydicom.sequence import Sequence

from pacskit.errors import NotCommitted

STORAGE_COMMITMENT_PUSH = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
REQUEST_COMMITMENT = 1
"""The Action Type ID of a Storage Commitment request (PS3.4 J.3.2)."""
ALL_COMMITTED = 1
SOME_FAILED = 2
"""The Event Type IDs of a report (PS3.4 J.3.3)."""

PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
REFERENCED_SOP_CLASS_NOT_SUPPORTED = 0x0122
RESOURCE_LIMITATION = 0x0213
DUPLICATE_TRANSACTION_UID = 0x0131
FAILURE_REASONS = {
    PROCESSING_FAILURE: "processing failure",
    NO_SUCH_OBJECT_INSTANCE: "no such object instance",
    RESOURCE_LIMITATION: "resource limitation",
    REFERENCED_SOP_CLASS_NOT_SUPPORTED: "referenced SOP class not supported",
    CLASS_INSTANCE_CONFLICT: "class/instance conflict",
    DUPLICATE_TRANSACTION_UID: "duplicate transaction UID",
}
"""The Failure Reason values of the Failed SOP Sequence (PS3.3 C.14.1.1)."""

_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
TRANSACTION_UID = 0x00081195
REFERENCED_SOP_SEQUENCE = 0x00081199
FAILED_SOP_SEQUENCE = 0x00081198


def failure_reason_text(reason: int) -> str:
    """A Failure Reason as words: ``0x0112 no such object instance``."""
    return f"0x{reason:04X} {FAILURE_REASONS.get(reason, 'unknown reason')}"


@dataclass(frozen=True)
class Reference:
    """One instance of a commitment request: its SOP Class and SOP Instance UIDs."""

    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class Failure:
    """An instance the SCP did not commit, and its Failure Reason (PS3.3 C.14.1.1)."""

    reference: Reference
    reason: int

    @property
    def reason_text(self) -> str:
        return failure_reason_text(self.reason)


@dataclass
class Report:
    """A Storage Commitment report (the N-EVENT-REPORT of PS3.4 J.3.3)."""

    transaction_uid: str
    committed: list[Reference] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)

    @property
    def event_type_id(self) -> int:
        return SOME_FAILED if self.failed else ALL_COMMITTED

    def to_dataset(self) -> Dataset:
        """The event information: Transaction UID, Referenced SOP Sequence of what is
        committed, Failed SOP Sequence of the rest (each present only when not empty)."""
        information = Dataset()
        information.TransactionUID = self.transaction_uid
        if self.committed:
            information.ReferencedSOPSequence = Sequence([_item(ref) for ref in self.committed])
        if self.failed:
            failed = []
            for failure in self.failed:
                item = _item(failure.reference)
                item.FailureReason = failure.reason
                failed.append(item)
            information.FailedSOPSequence = Sequence(failed)
        return information

    @classmethod
    def from_dataset(cls, information: Dataset) -> Report:
        """The report an N-EVENT-REPORT carries.

        Raises:
            ValueError: it has no Transaction UID, or an item without its UIDs.
        """
        transaction = str(information.get("TransactionUID", "") or "")
        if not transaction:
            raise ValueError("the report has no Transaction UID")
        committed = [_reference(item, "Referenced SOP Sequence") for item in information.get("ReferencedSOPSequence", [])]
        failed = [Failure(_reference(item, "Failed SOP Sequence"), int(item.get("FailureReason", PROCESSING_FAILURE)))
                  for item in information.get("FailedSOPSequence", [])]
        return cls(transaction, committed, failed)


class InvalidRequest(ValueError):
    """A commitment request that cannot be carried out: the attribute at fault (its tag)
    and why."""

    def __init__(self, tag: int, reason: str) -> None:
        super().__init__(reason)
        self.tag = tag
        self.reason = reason


def action_information(transaction_uid: str, references: list[Reference]) -> Dataset:
    """The N-ACTION information of a commitment request (PS3.4 Table J.3-1)."""
    information = Dataset()
    information.TransactionUID = transaction_uid
    information.ReferencedSOPSequence = Sequence([_item(ref) for ref in references])
    return information


def parse_request(information: Dataset | None) -> tuple[str, list[Reference]]:
    """The Transaction UID and the instances of a commitment request, once each is a
    valid UID (PS3.5 9.1) and there is at least one instance.

    Raises:
        InvalidRequest: what is missing or malformed.
    """
    if information is None:
        raise InvalidRequest(TRANSACTION_UID, "the request has no action information")
    transaction = canonical_uid(str(information.get("TransactionUID", "") or ""))
    if not transaction:
        raise InvalidRequest(TRANSACTION_UID, "no valid Transaction UID")
    items = information.get("ReferencedSOPSequence")
    if not items:
        raise InvalidRequest(REFERENCED_SOP_SEQUENCE, "no Referenced SOP Sequence item")
    references = []
    for number, item in enumerate(items, 1):
        sop_class = canonical_uid(str(item.get("ReferencedSOPClassUID", "") or ""))
        sop_instance = canonical_uid(str(item.get("ReferencedSOPInstanceUID", "") or ""))
        if not sop_class or not sop_instance:
            raise InvalidRequest(REFERENCED_SOP_SEQUENCE,
                                 f"item {number} of the Referenced SOP Sequence lacks a valid UID")
        references.append(Reference(sop_class, sop_instance))
    return transaction, references


def canonical_uid(value: str) -> str | None:
    """``value`` without its padding if it is a valid UID (PS3.5 9.1), else None."""
    uid = value.rstrip("\0 ")
    return uid if len(uid) <= 64 and _UID.fullmatch(uid) else None


def _item(reference: Reference) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = reference.sop_class_uid
    item.ReferencedSOPInstanceUID = reference.sop_instance_uid
    return item


def _reference(item: Dataset, sequence: str) -> Reference:
    sop_class = str(item.get("ReferencedSOPClassUID", "") or "")
    sop_instance = str(item.get("ReferencedSOPInstanceUID", "") or "")
    if not sop_instance:
        raise ValueError(f"an item of the {sequence} has no Referenced SOP Instance UID")
    return Reference(sop_class, sop_instance)


@dataclass
class CommitmentResult:
    """The outcome of a commitment request (``pacskit commit``).

    Attributes:
        transaction_uid: the request's Transaction UID.
        requested: the instances asked for.
        report: the SCP's report.
        same_association: whether the report came on the request's association (else
            on a new association the SCP opened to us).
        seconds: from the request to the report.
    """

    transaction_uid: str
    requested: list[Reference]
    report: Report
    same_association: bool
    seconds: float

    def raise_for_status(self) -> None:
        """Raise :class:`~pacskit.errors.NotCommitted` unless every instance is committed."""
        if self.report.failed:
            raise NotCommitted(f"{len(self.report.failed)} of {len(self.requested)} instance(s) not committed")
