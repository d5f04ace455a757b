"""The Storage Commitment Push Model SCP of ``pacskit serve`` (PS3.4 J.3).

An N-ACTION request is recorded (:mod:`pacskit.archive.commitment_store`) and answered
at once; then, on the association's thread, each instance it lists is checked: indexed
(else Failure Reason 0x0112), of the SOP class the request names (0x0119), and its file
read back whole against the size and CRC-32 kept when it was written (0x0110 when it
differs or cannot be read). The report goes out on the same association while the
requester keeps it open, otherwise on a new one to the requester's node
(:mod:`pacskit.archive.commitment_delivery`). A Transaction UID already in use is
answered with a report that fails every instance with 0x0131 (duplicate transaction
UID); the first transaction is left as it is.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from pathlib import Path

from pynetdicom import build_context
from pynetdicom.presentation import PresentationContext

from pacskit.archive.commitment_delivery import ReportDelivery, send_on
from pacskit.archive.commitment_store import Transaction, Transactions
from pacskit.archive.index import Index
from pacskit.commitment import (
    CLASS_INSTANCE_CONFLICT,
    DUPLICATE_TRANSACTION_UID,
    NO_SUCH_OBJECT_INSTANCE,
    PROCESSING_FAILURE,
    REQUEST_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH,
    Failure,
    InvalidRequest,
    Reference,
    Report,
    parse_request,
)
from pacskit.net.acceptor import DimseStatus, Peer
from pacskit.net.association import Association
from pacskit.net.commands import N_ACTION_RQ
from pacskit.net.normalized import NormalizedRequest, NormalizedResponse
from pacskit.settings import Operation

LOG = logging.getLogger("pacskit.archive")

NO_SUCH_SOP_INSTANCE = 0x0112
INVALID_ARGUMENT_VALUE = 0x0115
NO_SUCH_ACTION = 0x0123
UNRECOGNIZED_OPERATION = 0x0211
READ_CHUNK = 1 << 20
SYNTAXES = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]


class InstanceCheck:
    """Whether the archive holds an instance intact (see the module docstring)."""

    def __init__(self, index: Index, files: Path) -> None:
        self.index = index
        self.files = files

    def failure(self, reference: Reference) -> int | None:
        """The Failure Reason for ``reference``, or None when it is committed."""
        stored = self.index.instance(reference.sop_instance_uid)
        if stored is None:
            return NO_SUCH_OBJECT_INSTANCE
        if stored.sop_class_uid != reference.sop_class_uid:
            return CLASS_INSTANCE_CONFLICT
        try:
            size, crc32 = _read_back(self.files / stored.path)
        except OSError as exc:
            LOG.error("commitment: cannot read the file of %s: %s", reference.sop_instance_uid,
                      exc.strerror or type(exc).__name__)
            return PROCESSING_FAILURE
        if size != stored.size or (stored.crc32 is not None and crc32 != stored.crc32):
            LOG.error("commitment: the file of %s is not as it was stored (%d bytes, CRC-32 %08x; stored: "
                      "%d bytes, %s)", reference.sop_instance_uid, size, crc32, stored.size,
                      f"CRC-32 {stored.crc32:08x}" if stored.crc32 is not None else "no CRC-32")
            return PROCESSING_FAILURE
        return None

    def report(self, transaction: Transaction) -> Report:
        """The report of ``transaction``: every instance checked, or, for a duplicate
        Transaction UID, every instance failed with 0x0131."""
        report = Report(transaction.transaction_uid)
        for reference in transaction.requested:
            reason = DUPLICATE_TRANSACTION_UID if transaction.duplicate else self.failure(reference)
            if reason is None:
                report.committed.append(reference)
            else:
                report.failed.append(Failure(reference, reason))
        if report.failed:
            reasons = Counter(failure.reason_text for failure in report.failed)
            LOG.warning("commitment transaction %s from %s: %d of %d instance(s) not committed (%s)",
                        transaction.transaction_uid, transaction.requester, len(report.failed),
                        len(transaction.requested), ", ".join(f"{n} × {text}" for text, n in reasons.items()))
        return report


class StorageCommitmentService:
    """The archive's :class:`~pacskit.archive.scp.NormalizedService` for the Storage
    Commitment Push Model SOP Class (PS3.4 J.3.2)."""

    sop_class_uid = STORAGE_COMMITMENT_PUSH
    operation: Operation = "commitment"

    def __init__(self, transactions: Transactions, check: InstanceCheck, delivery: ReportDelivery) -> None:
        self.transactions = transactions
        self.check = check
        self.delivery = delivery

    def contexts(self) -> list[PresentationContext]:
        return [build_context(STORAGE_COMMITMENT_PUSH, SYNTAXES)]

    def serve(self, peer: Peer, request: NormalizedRequest) -> NormalizedResponse:
        """Record and answer an N-ACTION (PS3.4 J.3.2.1); the report follows (``after``).

        Raises:
            DimseStatus: 0x0211 for another service than N-ACTION, 0x0112 for another
                instance than the well-known one, 0x0123 for another action than 1,
                0x0115 (with the attribute) for a request without a valid Transaction UID
                or instance list.
        """
        if request.command_field != N_ACTION_RQ:
            raise DimseStatus(UNRECOGNIZED_OPERATION, f"{request.operation} is not served for Storage Commitment")
        if request.sop_instance_uid != STORAGE_COMMITMENT_INSTANCE:
            raise DimseStatus(NO_SUCH_SOP_INSTANCE, f"the instance is {STORAGE_COMMITMENT_INSTANCE}")
        if request.type_id != REQUEST_COMMITMENT:
            raise DimseStatus(NO_SUCH_ACTION, f"action type {request.type_id} is not a commitment request")
        try:
            transaction_uid, requested = parse_request(request.dataset)
        except InvalidRequest as exc:
            LOG.warning("commitment request from %s refused: %s", peer.ae_title, exc.reason)
            raise DimseStatus(INVALID_ARGUMENT_VALUE, exc.reason, offending=(exc.tag,)) from None
        transaction = self.transactions.receive(transaction_uid, peer.ae_title, requested)
        if transaction.duplicate:
            LOG.warning("commitment request from %s: transaction UID %s is already in use; its report fails "
                        "every instance with 0x0131", peer.ae_title, transaction_uid)
        else:
            LOG.info("commitment request from %s: transaction %s, %d instance(s)", peer.ae_title, transaction_uid,
                     len(requested))
        return NormalizedResponse(after=lambda association: self._report(association, transaction))

    def _report(self, association: Association, transaction: Transaction) -> None:
        """Check, keep the report, and send it on ``association`` if the requester still
        holds it open; else leave it to the delivery on a new association (which checks
        it first if that failed here)."""
        try:
            checked = self.transactions.checked(transaction, self.check.report(transaction))
            if send_on(association, checked):
                self.transactions.delivered(checked.id)
                return
        except Exception:
            LOG.exception("commitment report %s: checking or reporting failed", transaction.transaction_uid)
        self.delivery.schedule(transaction.id)


def _read_back(path: Path) -> tuple[int, int]:
    """The size and CRC-32 of a file, read whole."""
    size = crc32 = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            size += len(chunk)
            crc32 = zlib.crc32(chunk, crc32)
    return size, crc32
