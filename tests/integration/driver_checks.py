"""Checks shared by the tests of the asyncio driver: the seconds an awaited call took to
raise TimeoutError, and the exchange log of a call."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable

import pytest


def seconds_to_time_out(call: Callable[[], Awaitable[object]]) -> float:
    """Run ``call()`` on a new loop; it must raise TimeoutError: how long it took."""

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await call()
        return time.monotonic() - started

    return asyncio.run(main())


def exchange_lines(caplog: pytest.LogCaptureFixture, call: Callable[[], object]) -> list[str]:
    """The association, DIMSE and PDU log lines of ``call()`` at DEBUG, times blanked."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="pacskit"):
        call()
    return [re.sub(r"\d+\.\d+ s\b", "N s", f"{r.name} {r.levelname} {r.getMessage()}") for r in caplog.records
            if r.name.startswith(("pacskit.association", "pacskit.dimse", "pacskit.pdu"))]
