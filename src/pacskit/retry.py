"""Retrying an operation that failed for a reason that may pass, with backoff.

Transient: the connection refused, reset or aborted, no answer within a timeout, an
association rejected as transient (A-ASSOCIATE-RJ result 2, PS3.8 9.3.4), the peer out of
resources (0xA700, 0xA701: PS3.4 C.4.1.1.4, C.4.2.1.5), HTTP 429 Too Many Requests or 503
Service Unavailable (RFC 9110 15.6.4, RFC 6585 4). Anything else will not change by
asking again and is raised at once: a rejection as permanent, an unknown move destination
(0xA801), a failure to process (0xC000...), a host name that does not resolve, a bad query.

The n-th retry waits ``backoff * 2**(n-1)`` seconds, at most :data:`MAX_DELAY`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from pacskit.errors import (
    AssociationAborted,
    AssociationRejected,
    ConnectionRefused,
    DimseFailure,
    HttpFailure,
    NetworkTimeout,
)

LOG = logging.getLogger(__name__)
T = TypeVar("T")
MAX_DELAY = 30.0
REJECTED_TRANSIENT = 2
OUT_OF_RESOURCES = frozenset({0xA700, 0xA701})
HTTP_TRANSIENT = frozenset({429, 503})


def is_transient(exc: BaseException) -> bool:
    """Whether asking again may succeed where ``exc`` failed."""
    if isinstance(exc, AssociationRejected):
        return exc.result == REJECTED_TRANSIENT
    if isinstance(exc, ConnectionRefused | AssociationAborted | NetworkTimeout):
        return True
    if isinstance(exc, HttpFailure):
        return exc.status in HTTP_TRANSIENT
    if isinstance(exc, DimseFailure):
        return exc.status in OUT_OF_RESOURCES
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try again.

    Attributes:
        retries: attempts after the first; 0 tries once.
        backoff: seconds before the first retry, doubled for each next one.
    """

    retries: int = 0
    backoff: float = 0.5

    def delays(self) -> Iterator[float]:
        """The wait before each retry, in order."""
        for attempt in range(self.retries):
            yield min(self.backoff * 2 ** attempt, MAX_DELAY)


def call(operation: Callable[[], T], policy: RetryPolicy, what: str = "operation") -> T:
    """``operation()``, tried again after a transient failure as ``policy`` allows.

    Raises:
        PacskitError: the last failure, or the first one that is not transient.
    """
    delays = policy.delays()
    while True:
        try:
            return operation()
        except Exception as exc:
            delay = next_delay(exc, delays, what)
            if delay is None:
                raise
            time.sleep(delay)


async def call_async(operation: Callable[[], Awaitable[T]], policy: RetryPolicy,
                     what: str = "operation") -> T:
    """As :func:`call`, awaiting ``operation()`` and the waits between attempts."""
    delays = policy.delays()
    while True:
        try:
            return await operation()
        except Exception as exc:
            delay = next_delay(exc, delays, what)
            if delay is None:
                raise
            await asyncio.sleep(delay)


def next_delay(exc: Exception, delays: Iterator[float], what: str) -> float | None:
    """The wait before trying again after ``exc``, the next of ``delays``; None when
    ``exc`` is not transient or no retry is left."""
    if not is_transient(exc):
        return None
    delay = next(delays, None)
    if delay is not None:
        LOG.info("%s failed (%s); trying again in %.1f s", what, type(exc).__name__, delay)
    return delay
