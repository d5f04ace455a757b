"""Storage Commitment Push Model as the SCU (PS3.4 J.3): ask a peer to commit instances,
and wait for its report.

Our listener (:func:`pacskit.net.scp.report_listener`, on our AE title and port) is up
before the N-ACTION goes out. The report is then taken from whichever way it comes
first: on the request's association, which is held open while we wait, or on a new
association the peer opens to us (PS3.4 J.3.3; the peer must know our AE title, host
and port). Whichever comes first within the timeout is the result.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from pydicom.uid import generate_uid
from pynetdicom import build_context

from pacskit.commitment import (
    REQUEST_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH,
    CommitmentResult,
    Reference,
    Report,
    action_information,
)
from pacskit.errors import AssociationAborted, DimseFailure, NoCommitmentReport, ServiceNotSupported
from pacskit.net.acceptor import DimseStatus, Peer
from pacskit.net.association import Association, ReleaseRequested, associate
from pacskit.net.commands import N_EVENT_REPORT_RQ
from pacskit.net.normalized import EventReports, NormalizedRequest, n_action
from pacskit.net.scp import report_listener
from pacskit.nodes import Node
from pacskit.settings import Settings

LOG = logging.getLogger("pacskit.net")

SUCCESS = 0x0000
PROCESSING_FAILURE = 0x0110
NO_SUCH_EVENT_TYPE = 0x0113
SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


class _Awaited:
    """The report of one transaction, from whichever association brings it."""

    def __init__(self, transaction_uid: str) -> None:
        self.transaction_uid = transaction_uid
        self.report: Report | None = None
        self.same_association = False
        self.arrived = threading.Event()
        self._wake_read, self._wake_write = os.pipe()

    def take(self, request: NormalizedRequest, *, same_association: bool) -> int:
        """The status answering one N-EVENT-REPORT: success for our transaction's."""
        if request.type_id not in (1, 2):
            raise DimseStatus(NO_SUCH_EVENT_TYPE, f"event type {request.type_id} is not a commitment report")
        try:
            report = Report.from_dataset(request.dataset) if request.dataset is not None else None
        except ValueError as exc:
            raise DimseStatus(PROCESSING_FAILURE, str(exc)) from None
        if report is None or report.transaction_uid != self.transaction_uid:
            raise DimseStatus(PROCESSING_FAILURE, "not the transaction this listener waits for")
        if not self.arrived.is_set():
            self.report, self.same_association = report, same_association
            self.arrived.set()
            os.write(self._wake_write, b"!")
        return SUCCESS

    def on_listener(self, peer: Peer, request: NormalizedRequest) -> int:
        return self.take(request, same_association=False)

    def on_association(self, request: NormalizedRequest) -> int:
        return self.take(request, same_association=True)

    def hold(self, association: Association, deadline: float) -> None:
        """Serve what the peer sends on ``association`` until the report has come (by
        either way), the peer ends it, or ``deadline``."""
        while not self.arrived.is_set() and association.is_established:
            if not association.has_pending():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if not association.transport.wait_readable(left, self._wake_read):
                    continue
            try:
                association.serve(association.receive(association.open_request))
            except ReleaseRequested:
                association.release_response()
                return
            except AssociationAborted:
                return

    def close(self) -> None:
        os.close(self._wake_read)
        os.close(self._wake_write)


def request_commitment(settings: Settings, node: Node, references: list[Reference], *, timeout: float,
                       transaction_uid: str | None = None) -> CommitmentResult:
    """Ask ``node`` to commit ``references`` (N-ACTION, PS3.4 J.3.2) and wait at most
    ``timeout`` seconds for its report (N-EVENT-REPORT, J.3.3), on the request's
    association or on a new one to our AE title and port.

    Raises:
        NetworkError: the peer cannot be reached, or our port cannot be listened on.
        ServiceNotSupported: the peer accepts no Storage Commitment context.
        DimseFailure: the peer refused the request (its N-ACTION status).
        NoCommitmentReport: no report within ``timeout``.
    """
    transaction_uid = transaction_uid or generate_uid(prefix=None)
    awaited = _Awaited(transaction_uid)
    started = time.monotonic()
    deadline = started + timeout
    try:
        with report_listener(settings, STORAGE_COMMITMENT_PUSH, awaited.on_listener):
            context = build_context(STORAGE_COMMITMENT_PUSH, SYNTAXES)
            with associate(settings, node, [context]) as association:
                association.handlers[N_EVENT_REPORT_RQ] = EventReports(awaited.on_association)
                accepted = next((cx for cx in association.contexts.values()
                                 if cx.abstract_syntax == STORAGE_COMMITMENT_PUSH), None)
                if accepted is None:
                    raise ServiceNotSupported(f"{node.label} does not accept Storage Commitment")
                result = n_action(association, accepted, STORAGE_COMMITMENT_INSTANCE, REQUEST_COMMITMENT,
                                  action_information(transaction_uid, references))
                if result.status != SUCCESS:
                    comment = f": {result.comment}" if result.comment else ""
                    raise DimseFailure(f"{node.label} refused the commitment request with status "
                                       f"0x{result.status:04X}{comment}", result.status, result.comment)
                LOG.info("commitment request %s accepted by %s; waiting for its report", transaction_uid,
                         node.label)
                awaited.hold(association, deadline)
            awaited.arrived.wait(max(0.0, deadline - time.monotonic()))
    finally:
        awaited.close()
    if awaited.report is None:
        raise NoCommitmentReport(f"{node.label} accepted the commitment request but sent no report within "
                                 f"{timeout:g} s (on its association or to {settings.ae_title} on port "
                                 f"{settings.port})")
    return CommitmentResult(transaction_uid, references, awaited.report, awaited.same_association,
                            time.monotonic() - started)
