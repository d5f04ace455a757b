"""How ``pacskit serve`` delivers Storage Commitment reports (N-EVENT-REPORT, PS3.4
J.3.3): on the association of the request while the requester holds it open, otherwise
on a new association to the requester's node (its AE title in the nodes table), where
pacskit is the association requestor and the SCP of the SOP class (SCU/SCP role
selection, PS3.7 D.3.3.4). A delivery that fails is tried again ``attempts`` times,
``delay`` seconds apart; a report still undelivered is kept, and tried again when
``pacskit serve`` starts."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

from pynetdicom import build_context

from pacskit.archive.commitment_store import DELIVERED, RECEIVED, Transaction, Transactions
from pacskit.commitment import STORAGE_COMMITMENT_INSTANCE, STORAGE_COMMITMENT_PUSH, Report
from pacskit.errors import PacskitError
from pacskit.net.association import Association, ReleaseRequested, associate
from pacskit.net.normalized import n_event_report
from pacskit.nodes import Node
from pacskit.settings import Settings

LOG = logging.getLogger("pacskit.archive")
SUCCESS = 0x0000
SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


def send_on(association: Association, transaction: Transaction) -> bool:
    """Send the report of ``transaction`` on the association of its request, if the
    requester holds it open and has not asked to release it; whether the requester
    took it (status 0x0000). A release asked for meanwhile is answered."""
    report = transaction.report
    assert report is not None
    context = next((cx for cx in association.contexts.values() if cx.abstract_syntax == STORAGE_COMMITMENT_PUSH),
                   None)
    if context is None or not association.is_established or association.has_pending():
        return False
    try:
        result = n_event_report(association, context, STORAGE_COMMITMENT_INSTANCE, report.event_type_id,
                                report.to_dataset())
    except ReleaseRequested:
        association.release_response()
        return False
    except PacskitError as exc:
        LOG.warning("commitment report %s not delivered on the association of its request: %s",
                    transaction.transaction_uid, exc)
        return False
    if result.status != SUCCESS:
        LOG.warning("commitment report %s: %s answered 0x%04X on the association of its request",
                    transaction.transaction_uid, association.label, result.status)
        return False
    _delivered(transaction, association.label, "on the association of its request")
    return True


def send_report(settings: Settings, node: Node, report: Report) -> int:
    """Send ``report`` to ``node`` on a new association; the status it answered.

    Raises:
        NetworkError, DimseError: the association or the N-EVENT-REPORT failed.
    """
    context = build_context(STORAGE_COMMITMENT_PUSH, SYNTAXES)
    with associate(settings, node, [context], roles={STORAGE_COMMITMENT_PUSH: (False, True)}) as association:
        accepted = next((cx for cx in association.contexts.values()
                         if cx.abstract_syntax == STORAGE_COMMITMENT_PUSH), None)
        if accepted is None:
            raise PacskitError(f"{node.ae_title} accepts no Storage Commitment context")
        return n_event_report(association, accepted, STORAGE_COMMITMENT_INSTANCE, report.event_type_id,
                              report.to_dataset()).status


class ReportDelivery:
    """The reports waiting to go out on a new association, on a thread of their own.

    Args:
        settings: our AE title, the timeouts, the attempts and their delay.
        transactions: where the reports are kept.
        destination: the (host, port, TLS or not) of a requester's AE title, if the nodes
            table has it.
        check: makes the report of a transaction recorded but never checked (the server
            stopped between the answer and the check).
    """

    def __init__(self, settings: Settings, transactions: Transactions,
                 destination: Callable[[str], tuple[str, int, bool] | None],
                 check: Callable[[Transaction], Report]) -> None:
        self.settings = settings
        self.transactions = transactions
        self.destination = destination
        self.check = check
        options = settings.archive.commitment
        self.attempts, self.delay = options.attempts, options.delay
        self._due: list[tuple[float, int, int]] = []
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Deliver what earlier runs left undelivered (checking first what was never
        checked), then what :meth:`schedule` is given."""
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="commitment-reports", daemon=True)
        self._thread.start()
        left = self.transactions.undelivered()
        if left:
            LOG.info("commitment: %d report(s) not yet delivered; delivering", len(left))
        for transaction in left:
            self.schedule(transaction.id)

    def schedule(self, transaction_id: int, attempt: int = 0, delay: float = 0.0) -> None:
        """Deliver the report of ``transaction_id`` in ``delay`` seconds."""
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + delay, transaction_id, attempt))
            self._changed.notify()

    def stop(self) -> None:
        """Stop delivering (what is left stays in the database)."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._stopping:
                    return
                _, transaction_id, attempt = heapq.heappop(self._due)
            try:
                self._deliver(transaction_id, attempt)
            except Exception:
                LOG.exception("commitment: delivering report %d failed", transaction_id)

    def _deliver(self, transaction_id: int, attempt: int) -> None:
        transaction = self.transactions.get(transaction_id)
        if transaction is None or transaction.state == DELIVERED:
            return
        if transaction.state == RECEIVED:
            transaction = self.transactions.checked(transaction, self.check(transaction))
        assert transaction.report is not None
        where = self.destination(transaction.requester)
        if where is None:
            LOG.error("commitment report %s for %s kept undelivered: the nodes table has no host and port for "
                      "that AE title", transaction.transaction_uid, transaction.requester)
            return
        node = Node(ae_title=transaction.requester, host=where[0], port=where[1], tls=where[2])
        try:
            status = send_report(self.settings, node, transaction.report)
            error = "" if status == SUCCESS else f"answered 0x{status:04X}"
        except PacskitError as exc:
            error = str(exc)
        if not error:
            self.transactions.delivered(transaction.id)
            _delivered(transaction, f"{node.ae_title}@{node.host}:{node.port}", "on a new association")
            return
        failed = self.transactions.attempt_failed(transaction.id, error)
        if attempt + 1 < self.attempts:
            LOG.warning("commitment report %s to %s@%s:%d not delivered (attempt %d of %d): %s; next in %g s",
                        transaction.transaction_uid, node.ae_title, node.host, node.port, attempt + 1,
                        self.attempts, error, self.delay)
            self.schedule(transaction.id, attempt + 1, self.delay)
        else:
            LOG.error("commitment report %s to %s@%s:%d not delivered after %d attempt(s) (%d in all): %s; kept, "
                      "tried again when pacskit serve starts", transaction.transaction_uid, node.ae_title, node.host,
                      node.port, self.attempts, failed, error)


def _delivered(transaction: Transaction, to: str, how: str) -> None:
    report = transaction.report
    assert report is not None
    LOG.info("commitment report %s delivered to %s %s: %d committed, %d failed", transaction.transaction_uid, to,
             how, len(report.committed), len(report.failed))
