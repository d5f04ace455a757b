"""Which failures are tried again, how often, and after which waits."""

import pytest

from pacskit import retry
from pacskit.errors import (
    AssociationAborted,
    AssociationRejected,
    ConnectionRefused,
    DimseFailure,
    HostNotFound,
    HttpFailure,
    MoveDestinationUnknown,
    NetworkTimeout,
    QueryError,
)
from pacskit.retry import RetryPolicy


@pytest.mark.parametrize(("error", "transient"), [
    (ConnectionRefused("x"), True),
    (AssociationAborted("reset"), True),
    (NetworkTimeout("x"), True),
    (AssociationRejected("busy", result=2, source=3, reason=1), True),
    (AssociationRejected("no", result=1, source=1, reason=3), False),
    (DimseFailure("out of resources", status=0xA700), True),
    (DimseFailure("out of resources", status=0xA701), True),
    (MoveDestinationUnknown("who?", status=0xA801), False),
    (DimseFailure("cannot process", status=0xC000), False),
    (HttpFailure("busy", status=503), True),
    (HttpFailure("slow down", status=429), True),
    (HttpFailure("bad", status=400), False),
    (HostNotFound("x"), False),
    (QueryError("x"), False),
])
def test_transient_failures(error, transient):
    assert retry.is_transient(error) is transient


def test_backoff_doubles_and_is_capped():
    assert list(RetryPolicy(retries=4, backoff=0.5).delays()) == [0.5, 1.0, 2.0, 4.0]
    assert max(RetryPolicy(retries=12, backoff=1).delays()) == retry.MAX_DELAY
    assert list(RetryPolicy().delays()) == []


def attempts_of(errors):
    calls = []

    def operation():
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "done"

    return operation, calls


def test_transient_failures_are_retried_until_success():
    operation, calls = attempts_of([ConnectionRefused("1"), AssociationAborted("2")])
    assert retry.call(operation, RetryPolicy(retries=2, backoff=0)) == "done"
    assert len(calls) == 3


def test_retries_run_out():
    operation, calls = attempts_of([ConnectionRefused(str(n)) for n in range(5)])
    with pytest.raises(ConnectionRefused, match="2"):
        retry.call(operation, RetryPolicy(retries=2, backoff=0))
    assert len(calls) == 3


def test_a_permanent_failure_is_raised_at_once():
    operation, calls = attempts_of([MoveDestinationUnknown("who?", status=0xA801)])
    with pytest.raises(MoveDestinationUnknown):
        retry.call(operation, RetryPolicy(retries=5, backoff=0))
    assert len(calls) == 1
