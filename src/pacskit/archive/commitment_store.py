"""The Storage Commitment transactions of ``pacskit serve``, kept in the index database
until their report is delivered (PS3.4 J.3.3): a request is recorded before it is
answered, its report once the instances are checked, and its delivery last — so that
a report not yet delivered when the server stops is delivered after it restarts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update

from pacskit.archive.index import Index
from pacskit.archive.schema import CommitmentTransaction
from pacskit.commitment import Failure, Reference, Report

RECEIVED = "received"
CHECKED = "checked"
DELIVERED = "delivered"


@dataclass(frozen=True)
class Transaction:
    """One recorded request: its row, Transaction UID, requester's AE title, the
    instances asked for, whether its Transaction UID was in use already, and its
    report once checked."""

    id: int
    transaction_uid: str
    requester: str
    requested: list[Reference]
    duplicate: bool
    state: str
    report: Report | None
    attempts: int


class Transactions:
    """The commitment table of an :class:`~pacskit.archive.index.Index`."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def receive(self, transaction_uid: str, requester: str, requested: list[Reference]) -> Transaction:
        """Record a request; a Transaction UID already recorded makes it a duplicate
        (its report fails every instance with 0x0131, the first one is left as it is)."""
        with self.index.transaction() as conn:
            duplicate = conn.scalar(select(CommitmentTransaction.id)
                                    .where(CommitmentTransaction.transaction_uid == transaction_uid)
                                    .limit(1)) is not None
            inserted = conn.execute(insert(CommitmentTransaction).values(
                transaction_uid=transaction_uid, requester=requester, state=RECEIVED,
                requested=json.dumps([[r.sop_class_uid, r.sop_instance_uid] for r in requested]),
                duplicate=duplicate, attempts=0, last_error="", received_at=_now())).inserted_primary_key
            assert inserted is not None  # a single-row INSERT
            row_id = inserted[0]
        return Transaction(int(row_id), transaction_uid, requester, requested, duplicate, RECEIVED, None, 0)

    def checked(self, transaction: Transaction, report: Report) -> Transaction:
        """Keep the report of ``transaction``, to be delivered."""
        self._set(transaction.id, state=CHECKED, report=_report_json(report))
        return Transaction(transaction.id, transaction.transaction_uid, transaction.requester,
                           transaction.requested, transaction.duplicate, CHECKED, report, transaction.attempts)

    def delivered(self, transaction_id: int) -> None:
        self._set(transaction_id, state=DELIVERED, delivered_at=_now(), last_error="")

    def attempt_failed(self, transaction_id: int, error: str) -> int:
        """Count a failed delivery; how many have failed so far."""
        with self.index.transaction() as conn:
            conn.execute(update(CommitmentTransaction).where(CommitmentTransaction.id == transaction_id)
                         .values(attempts=CommitmentTransaction.attempts + 1, last_error=error[:500]))
            return int(conn.scalar(select(CommitmentTransaction.attempts)
                                   .where(CommitmentTransaction.id == transaction_id)) or 0)

    def get(self, transaction_id: int) -> Transaction | None:
        with self.index.engine.connect() as conn:
            row = conn.execute(select(CommitmentTransaction).where(CommitmentTransaction.id == transaction_id)).first()
        return _transaction(row) if row is not None else None

    def undelivered(self) -> list[Transaction]:
        """Every transaction whose report is not delivered, oldest first."""
        with self.index.engine.connect() as conn:
            rows = conn.execute(select(CommitmentTransaction).where(CommitmentTransaction.state != DELIVERED)
                                .order_by(CommitmentTransaction.id)).all()
        return [_transaction(row) for row in rows]

    def _set(self, transaction_id: int, **values: object) -> None:
        with self.index.transaction() as conn:
            conn.execute(update(CommitmentTransaction).where(CommitmentTransaction.id == transaction_id)
                         .values(**values))


def _transaction(record: Row[Any]) -> Transaction:
    requested = [Reference(*pair) for pair in json.loads(record.requested)]
    report = _report(record.transaction_uid, record.report) if record.report else None
    return Transaction(record.id, record.transaction_uid, record.requester, requested, bool(record.duplicate),
                       record.state, report, record.attempts)


def _report_json(report: Report) -> str:
    return json.dumps({"committed": [[r.sop_class_uid, r.sop_instance_uid] for r in report.committed],
                       "failed": [[f.reference.sop_class_uid, f.reference.sop_instance_uid, f.reason]
                                  for f in report.failed]})


def _report(transaction_uid: str, text: str) -> Report:
    data = json.loads(text)
    return Report(transaction_uid, [Reference(*pair) for pair in data["committed"]],
                  [Failure(Reference(c, i), reason) for c, i, reason in data["failed"]])


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
