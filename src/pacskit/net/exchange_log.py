"""Placeholder until the exchange log lands (same API)."""
from __future__ import annotations

import logging
from typing import Any

INFO = logging.INFO
DIMSE = logging.getLogger("pacskit.dimse")


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


association_requested = association_received = association_accepted = association_rejected = _noop
released = aborted = message = pdu = operation = unsupported = _noop
