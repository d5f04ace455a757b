"""A Storage Commitment report goes to its requester over TLS when the nodes table says
that node speaks DICOM TLS, as a C-MOVE to it does (found by mypy --strict, issue 15)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pacskit.archive import commitment_delivery
from pacskit.archive.commitment_delivery import ReportDelivery
from pacskit.archive.commitment_store import Transaction
from pacskit.commitment import Report
from pacskit.nodes import Node
from pacskit.settings import Settings


@dataclass
class _Transactions:
    transaction: Transaction
    delivered_ids: list[int] = field(default_factory=list)

    def get(self, transaction_id: int) -> Transaction:
        return self.transaction

    def delivered(self, transaction_id: int) -> None:
        self.delivered_ids.append(transaction_id)


@pytest.mark.parametrize("tls", [True, False])
def test_a_report_goes_over_tls_to_a_node_that_speaks_it(monkeypatch: pytest.MonkeyPatch, tls: bool) -> None:
    report = Report(transaction_uid="1.2.3", committed=[], failed=[])
    transaction = Transaction(7, "1.2.3", "MODALITY", [], False, "checked", report, 0)
    sent: list[Node] = []

    def send_report(settings: Settings, node: Node, report: Report) -> int:
        sent.append(node)
        return 0x0000

    monkeypatch.setattr(commitment_delivery, "send_report", send_report)
    transactions = _Transactions(transaction)
    delivery = ReportDelivery(Settings(), transactions,
                              lambda aet: ("modality.example", 11112, tls), lambda t: report)
    delivery._deliver(7, 0)

    assert [(n.ae_title, n.host, n.port, n.tls) for n in sent] == [("MODALITY", "modality.example", 11112, tls)]
    assert transactions.delivered_ids == [7]
