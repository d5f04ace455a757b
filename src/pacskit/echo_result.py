"""The outcome of a C-ECHO, apart from :mod:`pacskit.models` so that an echo does not
build the retrieve, move and store result models (docs/start-up.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pacskit.nodes import Node


class EchoResult(BaseModel):
    """The outcome of a C-ECHO.

    Attributes:
        node: the peer.
        status: the C-ECHO response status (0x0000 is success).
        associate_ms: milliseconds to open the association.
        rtt_ms: round-trip time of the C-ECHO itself, in milliseconds.
    """

    model_config = ConfigDict(frozen=True)

    node: Node
    status: int
    associate_ms: float
    rtt_ms: float
