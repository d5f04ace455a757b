"""pacskit's own DICOM Upper Layer (PS3.8 section 9): the state machine of
:mod:`pacskit.net.ul.fsm`, free of sockets and threads, driven by a transport and an
association object that carry out the outputs it returns."""

from pacskit.net.ul.fsm import (
    CloseTransport,
    Event,
    Indication,
    OpenTransport,
    Output,
    Primitive,
    ProtocolError,
    SendPdu,
    State,
    UpperLayer,
)

__all__ = [
    "CloseTransport",
    "Event",
    "Indication",
    "OpenTransport",
    "Output",
    "Primitive",
    "ProtocolError",
    "SendPdu",
    "State",
    "UpperLayer",
]
