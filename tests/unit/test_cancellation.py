"""A retrieve's cancellation: from another thread it waits for the instance being kept; from
a signal handler on the keeping thread (Ctrl-C during a copy) it returns at once, the
instance being kept ends whole and the next one is refused."""

from __future__ import annotations

import threading

import pytest

from pacskit.cancellation import Cancellation, RetrieveCancelled


def test_a_cancel_during_a_keep_on_the_same_thread_returns_and_the_keep_ends_whole():
    cancellation = Cancellation()
    kept = []

    def keep():
        cancellation.cancel()
        kept.append("whole")
        return "kept"

    returned = []
    keeper = threading.Thread(target=lambda: returned.append(cancellation.unless_cancelled(keep)), daemon=True)
    keeper.start()
    keeper.join(10)
    assert not keeper.is_alive(), "the cancel waited for the keep it interrupted"
    assert returned == ["kept"]
    assert kept == ["whole"]
    assert cancellation.cancelled
    with pytest.raises(RetrieveCancelled):
        cancellation.unless_cancelled(lambda: kept.append("late"))
    assert kept == ["whole"]


def test_a_cancel_from_another_thread_returns_only_once_the_keep_under_way_has_ended():
    cancellation = Cancellation()
    keeping, release = threading.Event(), threading.Event()
    order = []

    def keep():
        keeping.set()
        release.wait(10)
        order.append("kept")

    worker = threading.Thread(target=cancellation.unless_cancelled, args=(keep,))
    worker.start()
    assert keeping.wait(10)
    canceller = threading.Thread(target=lambda: (cancellation.cancel(), order.append("cancelled")))
    canceller.start()
    canceller.join(0.2)
    assert canceller.is_alive(), "cancel returned while an instance was being kept"
    release.set()
    canceller.join(10)
    worker.join(10)
    assert order == ["kept", "cancelled"]
