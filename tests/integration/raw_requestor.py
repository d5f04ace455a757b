"""A raw association requestor: connect, propose presentation contexts (and SCP roles)
with a given maximum PDU length, read the A-ASSOCIATE-AC, then write and read whatever
PDUs a test wants, each read bounded by a deadline (:class:`pdu_link.PduLink`)."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence

from pdu_link import PduLink
from raw_pdu import (
    A_ASSOCIATE_AC_PDU,
    A_RELEASE_RP_PDU,
    C_ECHO_RSP,
    VERIFICATION,
    Negotiated,
    Proposed,
    associate_rq,
    c_echo_rq,
    read_associate_ac,
    release_rq,
)

CALLING_AET = "RAWSCU"
VERIFICATION_ONLY = (Proposed(1, VERIFICATION),)


class AssociationRefused(AssertionError):
    """The acceptor answered the A-ASSOCIATE-RQ with something else than an AC."""


class RawRequestor(PduLink):
    """An association to ``host:port``, established on construction.

    Args:
        contexts: the presentation contexts to propose (Verification on ID 1 by default).
        max_pdu: the Maximum Length Received we announce.
        scp_roles: SOP classes for which we ask for the SCP role too.
        source: the local address to connect from (another loopback address, say).

    Attributes:
        negotiated: the accepted contexts, roles and the acceptor's maximum PDU length.
    """

    def __init__(self, host: str, port: int, called: str,
                 contexts: Sequence[Proposed] = VERIFICATION_ONLY, *,
                 calling: str = CALLING_AET, max_pdu: int = 65536, scp_roles: Iterable[str] = (),
                 timeout: float = 5.0, source: str | None = None) -> None:
        super().__init__(socket.create_connection((host, port), timeout=timeout,
                                                  source_address=(source, 0) if source else None))
        self.send(associate_rq(called, calling, contexts, max_pdu, scp_roles))
        answer = self.read_pdu(timeout)
        if answer is None or answer[0] != A_ASSOCIATE_AC_PDU:
            self.close()
            raise AssociationRefused(f"no A-ASSOCIATE-AC: {answer and (answer[0], answer[1][:12].hex())}")
        self.negotiated: Negotiated = read_associate_ac(answer[1], contexts)

    def __enter__(self) -> RawRequestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def context_for(self, abstract_syntax: str) -> int:
        """The ID of an accepted context for ``abstract_syntax``."""
        return next(cx for cx, (syntax, _) in self.negotiated.contexts.items() if syntax == abstract_syntax)

    def echo(self, message_id: int = 1, timeout: float = 5.0) -> int | None:
        """C-ECHO on the Verification context; the response's status."""
        self.send_message(self.context_for(VERIFICATION), c_echo_rq(message_id))
        response = self.read_message(timeout)
        assert response.command_field == C_ECHO_RSP and response.responds_to == message_id, response
        return response.status

    def release(self, timeout: float = 5.0) -> None:
        """A-RELEASE-RQ, then the A-RELEASE-RP; the requestor closes the connection
        (PS3.8 9.2 AR-3).

        Raises:
            AssertionError: another answer, or none in time.
        """
        self.send(release_rq())
        answer = self.read_pdu(timeout)
        assert answer is not None and answer[0] == A_RELEASE_RP_PDU, answer
        self.close()
