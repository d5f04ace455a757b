"""Retries, proven on the wire: a listener in front of a real `pacskit serve` resets the
first two connections, and the third reaches the archive; a permanent failure (0xA801)
is asked once."""

from __future__ import annotations

import asyncio

import pytest
from proxy import RecordingProxy
from served import ARCHIVE_AET, CLIENT_NODES, served_archive

from pacskit import AsyncClient, Client, Node, Settings
from pacskit.errors import AssociationAborted, MoveDestinationUnknown
from pacskit.level_queries import StudyQuery

FAST = Settings(retry_backoff=0.05, connect_timeout=3, acse_timeout=5, dimse_timeout=10)


@pytest.fixture(scope="module")
def archive(tmp_path_factory, corpus):
    with served_archive(tmp_path_factory.mktemp("retries"), [c.path for c in corpus],
                        nodes=CLIENT_NODES) as served:
        yield served


def through(proxy: RecordingProxy) -> Node:
    return Node(ae_title=ARCHIVE_AET, host="127.0.0.1", port=proxy.port)


@pytest.fixture
def flaky(archive):
    proxy = RecordingProxy("127.0.0.1", archive.settings.port, drop_first=2)
    yield proxy
    proxy.close()


def test_the_third_connection_is_reached(flaky, corpus):
    studies = Client(FAST).find_studies(through(flaky), StudyQuery(patient_id=corpus[0].patient_id),
                                        retries=2)
    assert {s.study_instance_uid for s in studies} == {c.study_uid for c in corpus
                                                       if c.patient_id == corpus[0].patient_id}
    assert flaky.connections == 3


def test_too_few_retries_give_the_last_failure(flaky):
    with pytest.raises(AssociationAborted):
        Client(FAST).find_studies(through(flaky), retries=1)
    assert flaky.connections == 2


def test_retries_come_from_the_settings(flaky, corpus, tmp_path):
    client = Client(FAST.model_copy(update={"retries": 2}))
    result = client.get_study(through(flaky), corpus[0].study_uid, tmp_path).raise_for_status()
    assert (result.status, result.completed, flaky.connections) == ("success", 6, 3)


def test_async_retries_wait_on_the_loop(flaky, corpus):
    async def main():
        client = AsyncClient(FAST)
        ticks = 0

        async def ticking():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(ticking())
        try:
            return await client.echo(through(flaky), retries=2, timeout=30), ticks
        finally:
            ticker.cancel()

    echo, ticks = asyncio.run(main())
    assert echo.status == 0
    assert flaky.connections == 3
    assert ticks >= 5, "the loop ran during the backoff"


def test_unknown_move_destination_is_not_retried(archive, corpus):
    proxy = RecordingProxy("127.0.0.1", archive.settings.port)
    try:
        with pytest.raises(MoveDestinationUnknown):
            Client(FAST).move_study(through(proxy), corpus[0].study_uid, "NOWHERE", retries=3)
        assert proxy.connections == 1
    finally:
        proxy.close()
