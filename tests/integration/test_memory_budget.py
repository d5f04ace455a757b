"""Memory across associations: 16 peers each sending the largest C-FIND identifier
``pacskit serve`` keeps in memory (just under 16 MiB), none of them finished, cost no
more than the memory budget; the requests over it are refused with 0xA700 (out of
resources) once they are complete, and the server serves on (docs/limits.md).
"""

from __future__ import annotations

from pathlib import Path

from hostile_peers import assert_serving, wait_until_read
from pydicom import Dataset
from raw_pdu import (
    COMMAND_FRAGMENT,
    LAST_FRAGMENT,
    STUDY_ROOT_FIND,
    Proposed,
    dataset_bytes,
    p_data_tf,
    pdv,
)
from raw_requestor import RawRequestor
from serve_process import ARCHIVE_AET, CLIENT_AET, ServeProcess

from pacskit.net.commands import c_find_rq

BUDGET = 64 << 20
PEERS = 16
IDENTIFIER = (16 << 20) - (64 << 10)
# A dataset in memory is counted twice (its bytes, the Dataset decoded from them).
ADMITTED = BUDGET // (2 * IDENTIFIER)
PDV_VALUE = 262144 - 6 - 64  # one PDV per P-DATA-TF within the Maximum Length serve announces
OUT_OF_RESOURCES = 0xA700
PENDING = (0xFF00, 0xFF01)
READ_WITHIN = 60.0
# The bound on the server's peak RSS growth while the 16 are held: the budget. What it
# holds is 2 × 16 MiB of identifier bytes (counted twice); measured +54 MiB with the
# allocator's share (per-thread arenas keeping the freed 256 KiB PDU buffers). Without
# the budget all 16 are kept: +254 MiB.
GROWTH_BOUND = BUDGET


def large_identifier() -> bytes:
    """A study-level identifier matching nothing, made large by a private element."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = "1.2.826.0.1.3680043.10.1317.404"
    identifier.add_new(0x00090010, "LO", "PACSKIT BUDGET TEST")
    head = dataset_bytes(identifier)
    padding = IDENTIFIER - len(head) - 8
    element = bytes.fromhex("09000110") + padding.to_bytes(4, "little")  # (0009,1001), Implicit VR LE
    return head + element + bytes(padding)


class UnfinishedFind:
    """A C-FIND whose identifier is sent but for its last fragment."""

    def __init__(self, server: ServeProcess, identifier: bytes) -> None:
        self.requestor = RawRequestor("127.0.0.1", server.port, ARCHIVE_AET, [Proposed(1, STUDY_ROOT_FIND)],
                                      calling=CLIENT_AET, timeout=READ_WITHIN)
        self.pieces = [identifier[at:at + PDV_VALUE] for at in range(0, len(identifier), PDV_VALUE)]
        self.requestor.send(p_data_tf(pdv(1, COMMAND_FRAGMENT | LAST_FRAGMENT, c_find_rq(1, STUDY_ROOT_FIND))))
        for piece in self.pieces[:-1]:
            self.requestor.send(p_data_tf(pdv(1, 0x00, piece)))

    @property
    def port(self) -> int:
        return int(self.requestor.sock.getsockname()[1])

    def finish(self) -> int | None:
        """Send the last fragment; the final status of the C-FIND."""
        self.requestor.send(p_data_tf(pdv(1, LAST_FRAGMENT, self.pieces[-1])))
        while True:
            response = self.requestor.read_message(READ_WITHIN)
            if response.status not in PENDING:
                return response.status


def test_unfinished_identifiers_of_16_associations_stay_within_the_memory_budget(tmp_path: Path, corpus: list):
    identifier = large_identifier()
    assert len(identifier) == IDENTIFIER
    with ServeProcess(tmp_path / "data", settings={"MEMORY_BUDGET": str(BUDGET)}) as server:
        rss_before = server.status("VmRSS")
        finds = []
        for _ in range(PEERS):
            finds.append(UnfinishedFind(server, identifier))
            wait_until_read(server.port, {finds[-1].port}, READ_WITHIN)
        growth = (server.status("VmHWM") - rss_before) << 10
        assert growth < GROWTH_BOUND, f"peak RSS {growth >> 20} MiB above the start, budget {BUDGET >> 20} MiB"

        statuses = [find.finish() for find in finds]
        assert statuses.count(OUT_OF_RESOURCES) == PEERS - ADMITTED, statuses
        for find in finds:
            find.requestor.close()

        again = UnfinishedFind(server, identifier)  # what the finished ones held is given back
        assert again.finish() != OUT_OF_RESOURCES
        again.requestor.close()
        assert_serving(server, corpus[0].path)
