"""AsyncClient's limit on associations open at once with one peer address
(``max_connections``, pacskit.net.aio_limits): counted on the peer's side by a proxy in
front of Orthanc and DCMTK, whatever the DIMSE call; waiters served in turn, a cancelled
or timed-out waiter giving back nothing it did not hold, each client with its own slots."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from counting_proxy import CountingProxy
from worklist_answers import CORPUS_ITEMS, dump_to_dicom

from pacskit import AsyncClient, Node, Settings
from pacskit.level_queries import SeriesQuery, StudyQuery
from pacskit.net.aio_limits import ConnectionLimit, SlotsExhausted
from pacskit.query import Query
from pacskit.testing.peers import StoreSCP, WlmScpFs

OUR_AET = "PACSKIT"


def through(proxy: CountingProxy, peer) -> Node:
    return Node(ae_title=peer.ae_title, host="127.0.0.1", port=proxy.port)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the loop run until ``condition`` holds (it is a state of the loop's own tasks)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0)


@pytest.fixture
def orthanc_proxy(orthanc):
    with CountingProxy("127.0.0.1", orthanc.port) as proxy:
        yield proxy


@pytest.mark.parametrize("max_connections", [4, None])
def test_a_hundred_finds_at_once_never_exceed_the_limit_on_the_peer(orthanc, orthanc_proxy, corpus,
                                                                     max_connections):
    patients = sorted({c.patient_id for c in corpus})
    node = through(orthanc_proxy, orthanc)

    async def main():
        client = AsyncClient(Settings(), max_connections=max_connections)
        alone = {p: await client.find_studies(node, StudyQuery(patient_id=p)) for p in patients}
        found = await asyncio.gather(*(client.find_studies(node, StudyQuery(patient_id=patients[i % len(patients)]),
                                                           timeout=60) for i in range(100)),
                                     return_exceptions=True)
        return client.connections.limit, alone, found

    limit, alone, found = asyncio.run(main())
    assert limit == (max_connections or 16)
    assert [f for f in found if isinstance(f, BaseException)] == []
    for i, studies in enumerate(found):
        expected = alone[patients[i % len(patients)]]
        assert sorted(s.study_instance_uid for s in studies) == sorted(s.study_instance_uid for s in expected)
    assert orthanc_proxy.accepted == len(patients) + 100
    assert orthanc_proxy.peak == limit, f"the peer had {orthanc_proxy.peak} associations at once"


def test_finds_gathered_against_dcmqrscp_stay_within_the_limit(dcmqrscp, corpus):
    study_uids = sorted({c.study_uid for c in corpus})

    async def main():
        client = AsyncClient(Settings(), max_connections=3)
        return await asyncio.gather(*(client.find_studies(node, timeout=60) for _ in range(30)),
                                    return_exceptions=True)

    with CountingProxy("127.0.0.1", dcmqrscp.port) as proxy:
        node = through(proxy, dcmqrscp)
        found = asyncio.run(main())
        assert [f for f in found if isinstance(f, BaseException)] == []
        assert all(sorted(s.study_instance_uid for s in studies) == study_uids for studies in found)
        assert (proxy.accepted, proxy.peak) == (30, 3)


def test_a_cancelled_or_timed_out_waiter_frees_nothing_it_did_not_hold(orthanc, orthanc_proxy, corpus):
    node = through(orthanc_proxy, orthanc)

    async def main() -> None:
        client = AsyncClient(Settings(), max_connections=1)
        slots = client.connections
        async with client.iter_find(node, Query.build("image"), timeout=60) as matches:
            assert await anext(aiter(matches))
            assert (slots.held(node), orthanc_proxy.accepted) == (1, 1)

            waiter = asyncio.create_task(client.echo(node, timeout=60))
            await until(lambda: slots.waiting(node) == 1)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert (slots.held(node), slots.waiting(node)) == (1, 0)

            with pytest.raises(TimeoutError):
                await asyncio.create_task(client.echo(node, timeout=0.2))
            assert (slots.held(node), slots.waiting(node), orthanc_proxy.accepted) == (1, 0, 1)

            second = asyncio.create_task(client.echo(node, timeout=60))
            await until(lambda: slots.waiting(node) == 1)
            assert (slots.held(node), orthanc_proxy.accepted) == (1, 1), "a slot was freed by a waiter"
        assert (await second).status == 0x0000
        assert (slots.held(node), slots.waiting(node)) == (0, 0)

    asyncio.run(main())
    assert (orthanc_proxy.accepted, orthanc_proxy.peak) == (2, 1)


def test_the_slots_are_each_clients_own_and_per_peer_address(orthanc, orthanc_proxy, corpus):
    node = through(orthanc_proxy, orthanc)
    direct = Node(ae_title=orthanc.ae_title, host="127.0.0.1", port=orthanc.port)

    async def main() -> None:
        first, second = AsyncClient(Settings(), max_connections=2), AsyncClient(Settings(), max_connections=2)
        finds = [client.iter_find(node, Query.build("image"), timeout=60)
                 for client in (first, second) for _ in range(2)]
        for find in finds:
            await find.__aenter__()
            assert await anext(aiter(find))
        assert await asyncio.to_thread(orthanc_proxy.wait_open, 4, 10), orthanc_proxy.open
        assert (first.connections.held(node), second.connections.held(node)) == (2, 2)

        waiting = asyncio.create_task(first.echo(node, timeout=60))
        await until(lambda: first.connections.waiting(node) == 1)
        assert second.connections.waiting(node) == 0
        assert (await first.echo(direct, timeout=30)).status == 0x0000, "another address waits too"
        assert orthanc_proxy.accepted == 4
        for find in finds:
            await find.__aexit__(None, None, None)
        assert (await waiting).status == 0x0000

    asyncio.run(main())
    assert (orthanc_proxy.accepted, orthanc_proxy.peak) == (5, 4)


def test_waiters_get_their_slot_in_the_order_they_came():
    async def main() -> list[int]:
        limit, node, order = ConnectionLimit(1), Node(ae_title="ANY", host="127.0.0.1", port=104), []
        release = asyncio.Event()

        async def call(number: int) -> None:
            async with limit.slot(node):
                order.append(number)
                await release.wait()

        holder = asyncio.create_task(call(0))
        await until(lambda: limit.held(node) == 1)
        tasks = []
        for number in range(1, 6):
            tasks.append(asyncio.create_task(call(number)))
            await until(lambda: limit.waiting(node) == len(tasks))
        release.set()
        await asyncio.gather(holder, *tasks)
        return order

    assert asyncio.run(main()) == [0, 1, 2, 3, 4, 5]


def test_a_waiter_cancelled_as_it_is_woken_passes_the_slot_on():
    async def main() -> tuple[int, int, bool, bool]:
        limit, node = ConnectionLimit(1), Node(ae_title="ANY", host="127.0.0.1", port=104)

        async def take() -> bool:
            async with limit.slot(node):
                return True

        async with limit.slot(node):
            woken, last = asyncio.create_task(take()), asyncio.create_task(take())
            await until(lambda: limit.waiting(node) == 2)
        woken.cancel()
        took = await last
        await asyncio.gather(woken, return_exceptions=True)
        return limit.held(node), limit.waiting(node), took, woken.cancelled()

    assert asyncio.run(main()) == (0, 0, True, True)


def test_async_for_loops_nested_deeper_than_the_limit_fail_at_once_instead_of_waiting_for_themselves(
        orthanc, orthanc_proxy, corpus):
    """With 2 slots, two nested iterations hold both: a third call inside them would wait
    for a slot only they can give back. It fails at once, and the loops around it end
    cleanly, every slot given back."""
    node = through(orthanc_proxy, orthanc)

    async def main() -> tuple[str, int, int]:
        client = AsyncClient(Settings(), max_connections=2)
        async with client.iter_results(node, StudyQuery(), timeout=30) as studies:
            async for study in studies:
                async with client.iter_results(node, SeriesQuery(study_instance_uid=study.study_instance_uid),
                                               timeout=30) as series:
                    async for _ in series:
                        held = client.connections.held(node)
                        with pytest.raises(SlotsExhausted) as refused:
                            await client.find_studies(node, timeout=30)
                        break
                break
        return str(refused.value), held, client.connections.held(node)

    message, held, after = asyncio.run(main())
    assert (held, after) == (2, 0)
    assert "already holds all 2 associations" in message and "max_connections" in message


def test_nested_loops_within_the_limit_are_served():
    async def main() -> list[int]:
        limit, node = ConnectionLimit(2), Node(ae_title="ANY", host="127.0.0.1", port=104)
        seen = []
        async with limit.slot(node):
            async with limit.slot(node):
                seen.append(limit.held(node))
            async with limit.slot(node):
                seen.append(limit.held(node))
        seen.append(limit.held(node))
        return seen

    assert asyncio.run(main()) == [2, 2, 0]


def test_no_limit_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        AsyncClient(Settings(), max_connections=0)
    assert AsyncClient(Settings(client_max_connections=3)).connections.limit == 3


@pytest.fixture(scope="module")
def worklist_peer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("worklist-items")
    with WlmScpFs(tmp_path_factory.mktemp("wlmscpfs")) as peer:
        peer.load([dump_to_dicom(path, folder / f"{path.stem}.wl") for path in CORPUS_ITEMS])
        yield peer


def calls(corpus, folder, storescp) -> dict[str, Callable[[AsyncClient, Node], Awaitable[object]]]:
    study = sorted({c.study_uid for c in corpus})[0]
    return {
        "echo": lambda client, node: client.echo(node, timeout=60),
        "find": lambda client, node: client.find(node, Query.build("study"), timeout=60),
        "get": lambda client, node: client.get_study(node, study, folder / "get", timeout=60),
        "get by C-MOVE to ourselves": lambda client, node: client.get_study(node, study, folder / "move",
                                                                            method="move", timeout=60),
        "move": lambda client, node: client.move_study(node, study, storescp.ae_title, timeout=60),
        "store": lambda client, node: client.store([c.path for c in corpus], node, parallel=3, timeout=60),
    }


@pytest.mark.parametrize("call", ["echo", "find", "get", "get by C-MOVE to ourselves", "move", "store", "worklist"])
def test_every_dimse_call_waits_for_a_slot(call, orthanc, corpus, tmp_path, our_port, worklist_peer):
    with StoreSCP(tmp_path / "storescp") as storescp:
        orthanc.add_modality("limits-here", OUR_AET, "127.0.0.1", our_port)
        orthanc.add_modality("limits-storescp", storescp.ae_title, "127.0.0.1", storescp.port)
        peer = worklist_peer if call == "worklist" else orthanc
        work = (lambda client, node: client.worklist(node, timeout=60)) if call == "worklist" \
            else calls(corpus, tmp_path, storescp)[call]
        with CountingProxy("127.0.0.1", peer.port) as proxy:
            node = through(proxy, peer)

            async def main() -> object:
                client = AsyncClient(Settings(ae_title=OUR_AET, port=our_port), max_connections=1)
                async with client.connections.slot(node):
                    task = asyncio.create_task(work(client, node))
                    await until(lambda: client.connections.waiting(node) == (3 if call == "store" else 1))
                    assert proxy.accepted == 0, "an association opened though every slot was held"
                return await task

            outcome = asyncio.run(main())
            assert proxy.accepted >= 1 and proxy.peak == 1, (proxy.accepted, proxy.peak)
        if call == "store":
            assert (outcome.sent, outcome.failed) == (len(corpus), 0)  # type: ignore[attr-defined]
            assert proxy.accepted == 3
        elif call == "move":
            assert outcome.completed == 6 and len(storescp.received()) == 6  # type: ignore[attr-defined]
        elif call == "worklist":
            assert len(outcome) == len(CORPUS_ITEMS)  # type: ignore[arg-type]
        elif call.startswith("get"):
            assert outcome.status == "success" and outcome.written == 6  # type: ignore[attr-defined]
