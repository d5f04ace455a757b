"""A bounded mutation fuzz of a live ``pacskit serve``: thousands of mutated
conversations (:mod:`fuzz_cases`, fixed seed), each on a fresh raw socket, after which
the server must still be alive and serving, no bigger than a leak-free server would be,
with nothing left in its temporary area and nothing lost that it acknowledged.

A failing case is replayed alone with ``python tests/integration/fuzz_cases.py --seed
SEED --case N --port PORT`` against any running server.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from clirunner import run_cli
from fuzz_cases import Case, case, conversation, play
from serve_process import CLIENT_AET, ServeProcess

from pacskit import Client, Settings
from pacskit.query import Query

SEED = 20240611
CASES = 2000
WARM_UP = 20
# Seconds for one case: the server has the whole conversation, then end of file, at once;
# a valid one is answered in under 10 ms.
DEADLINE = 5.0
MAX_HANGS = 3
# Every association has a 64 KiB read-ahead buffer, and more for a PDU in progress: a server
# that kept one per association would grow by CASES × 64 KiB = 125 MiB here. 32 MiB leaves
# room for the allocator's high-water marks (a mutated length can make it preallocate up to
# 4 MiB for one PDU) and still catches a leak of a quarter of that buffer per association.
RSS_GROWTH_BOUND_KIB = 32 * 1024
SETTLE = 5.0


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_mutated_conversations_leave_serve_alive_bounded_clean_and_lossless(tmp_path: Path, corpus: list):
    server = ServeProcess(tmp_path / "data")
    problems: list[str] = []
    acknowledged: set[str] = set()
    with server, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's, about the mutated UIDs it is asked to read
        for number in range(CASES, CASES + WARM_UP):
            valid = play(b"".join(conversation(number)), server.port, DEADLINE)
            assert valid.closed and valid.pdu_types == [0x02, 0x04, 0x04, 0x06], valid
            acknowledged.update(valid.acknowledged)
        assert len(acknowledged) == WARM_UP
        rss_before = server.rss_kib()

        hung: list[Case] = []
        first_seen: dict[str, Case] = {}
        for number in range(CASES):
            mutated = case(SEED, number)
            exchange = play(mutated.stream, server.port, DEADLINE)
            acknowledged.update(exchange.acknowledged)
            if not exchange.closed:
                hung.append(mutated)
            for path in server.temporary_files():
                first_seen.setdefault(path.name, mutated)
            if not server.is_alive():
                problems.append(f"the server died after {mutated.description}: {server.log()}")
                break
            if len(hung) >= MAX_HANGS:
                break
        if hung:
            problems.append(f"{len(hung)} cases not closed within {DEADLINE:g} s: "
                            + "; ".join(c.description for c in hung))

        if server.is_alive():
            growth = server.rss_kib() - rss_before
            if growth >= RSS_GROWTH_BOUND_KIB:
                problems.append(f"RSS grew by {growth} KiB over {CASES} cases (bound {RSS_GROWTH_BOUND_KIB})")
            client = Client(Settings(ae_title=CLIENT_AET, acse_timeout=10, dimse_timeout=10, network_timeout=10))
            assert client.echo(server.node).status == 0x0000
            assert client.store([corpus[0].path], server.node).raise_for_status().sent == 1
            acknowledged.add(corpus[0].sop_instance_uid)
            if not wait_until(lambda: not server.temporary_files(), SETTLE):
                left = [path.name for path in server.temporary_files()]
                culprits = sorted({first_seen[name].number for name in left if name in first_seen})
                problems.append(f"{len(left)} files left in tmp/, first seen after: "
                                + "; ".join(case(SEED, n).description for n in culprits))
            indexed = {match.SOPInstanceUID for match in client.find(server.node, Query.build("image"))}
            lost = acknowledged - indexed
            if lost:
                problems.append(f"{len(lost)} acknowledged instances are not in the index: {sorted(lost)[:10]}")
    check = run_cli("archive", "check", "--data-dir", server.data_dir)
    if check.returncode != 0:
        problems.append(f"archive check: exit {check.returncode}: {check.stdout.strip()} {check.stderr.strip()}")
    assert not problems, "\n".join(problems)
