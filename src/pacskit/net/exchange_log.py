"""The DICOM exchange in the log, as DCMTK's ``-v`` (INFO) and ``-d`` (DEBUG) show it:
the association's negotiation, release and abort (PS3.8 7, 9.3) on ``pacskit.association``,
each DIMSE message (PS3.7 9, 10) on ``pacskit.dimse``, each PDU on ``pacskit.pdu``
(DEBUG only), and the archive's operations on ``pacskit.archive``.

The network core calls these functions on both sides of an association. Each returns at
once when its logger is not enabled for the level (a disabled call costs a fraction of a
microsecond), and none ever raises: a peer's bytes that cannot be decoded are logged as
such. No person name is logged: datasets are dumped by :mod:`pacskit.dataset_dump`, which
shows every PN value as ``(withheld)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal

from pacskit.dimse_text import error_name, printable, sop_class_name, summary
from pacskit.ul_codes import (
    abort_reason,
    abort_source,
    context_result,
    reject_reason,
    reject_result,
    reject_source,
)
from pacskit.ul_codes import (
    pdu_type as pdu_type_name,
)

ASSOCIATION = logging.getLogger("pacskit.association")
DIMSE = logging.getLogger("pacskit.dimse")
PDU = logging.getLogger("pacskit.pdu")
ARCHIVE = logging.getLogger("pacskit.archive")
INFO = logging.INFO
DEBUG = logging.DEBUG
_association_on = ASSOCIATION.isEnabledFor
_dimse_on = DIMSE.isEnabledFor
_pdu_on = PDU.isEnabledFor
_archive_on = ARCHIVE.isEnabledFor

Direction = Literal["sent", "received"]
ProposedContext = tuple[int, str, Sequence[str]]
"""A proposed presentation context: ID, abstract syntax UID, transfer syntax UIDs."""
AcceptedContext = tuple[int, str, str, bool, bool]
"""An accepted presentation context: ID, abstract syntax UID, transfer syntax UID, and
whether the requestor may act as SCU and as SCP on it."""
RefusedContext = tuple[int, str, int]
"""A refused presentation context: ID, abstract syntax UID, result (PS3.8 Table 9-18)."""


def peer_label(ae_title: str, address: str, port: int | None = None) -> str:
    """How a peer is named in the log when there may be many: ``STORESCU (127.0.0.1:51234)``."""
    where = f"{address}:{port}" if port is not None else address
    return f"{printable(ae_title.strip()) or '(no AE title)'} ({where})"


def tls_session(*, peer: str, version: str, cipher: str, subject: str) -> None:
    """A DICOM TLS session is up (PS3.15 B.1), before the A-ASSOCIATE-RQ. INFO: the TLS
    version, the cipher suite and the subject of the peer's certificate."""
    if _association_on(INFO):
        ASSOCIATION.info("TLS with %s: %s, %s%s", peer, version, cipher,
                         f", certificate {subject}" if subject else "")


def association_requested(*, calling: str, called: str, address: str, port: int,
                          contexts: Sequence[ProposedContext], roles: Mapping[str, tuple[bool, bool]],
                          max_pdu: int, implementation: tuple[str, str], identity: str = "") -> None:
    """We send an A-ASSOCIATE-RQ (PS3.8 9.3.2). INFO: who to whom, how many contexts;
    DEBUG: each proposed context with its transfer syntaxes and the roles proposed
    (SCP/SCU Role Selection, PS3.7 D.3.3.4), our max PDU length and implementation, and
    the ``identity`` sent (PS3.7 D.3.3.7, as described: its secret withheld)."""
    if not _association_on(INFO):
        return
    ASSOCIATION.info("Requesting association: %s -> %s at %s:%d (%s)", _ae(calling), _ae(called),
                     address, port, _count(len(contexts), "presentation context"))
    if _association_on(DEBUG):
        ASSOCIATION.debug("\n".join([f"A-ASSOCIATE-RQ to {_ae(called)}:",
                                     *_proposed(contexts, roles, max_pdu, implementation),
                                     *([f"  user identity: {identity}"] if identity else [])]))


def association_received(*, calling: str, called: str, address: str, contexts: Sequence[ProposedContext],
                         roles: Mapping[str, tuple[bool, bool]], max_pdu: int,
                         implementation: tuple[str, str], port: int | None = None, identity: str = "") -> None:
    """A peer's A-ASSOCIATE-RQ arrived (the acceptor's side); the same lines as
    :func:`association_requested`, the peer's max PDU length and implementation."""
    if not _association_on(INFO):
        return
    where = f"{address}:{port}" if port is not None else address
    ASSOCIATION.info("Association request: %s -> %s from %s (%s)", _ae(calling), _ae(called), where,
                     _count(len(contexts), "presentation context"))
    if _association_on(DEBUG):
        ASSOCIATION.debug("\n".join([f"A-ASSOCIATE-RQ from {_ae(calling)}:",
                                     *_proposed(contexts, roles, max_pdu, implementation),
                                     *([f"  user identity: {identity}"] if identity else [])]))


def association_accepted(*, peer: str, accepted: Sequence[AcceptedContext], proposed: int, max_pdu: int,
                         implementation: tuple[str, str], refused: Sequence[RefusedContext] = (),
                         by_us: bool = False) -> None:
    """The A-ASSOCIATE-AC (PS3.8 9.3.3): sent by the peer, or by us (``by_us``) to it.
    INFO: how many contexts were accepted and the max PDU length of the side that accepted;
    DEBUG: each accepted context with its transfer syntax and roles, each ``refused``
    one with its result (PS3.8 Table 9-18), the implementation of the side that accepted."""
    if not _association_on(INFO):
        return
    limit = f"max PDU {max_pdu}" if max_pdu else "no PDU limit"
    counted = f"{len(accepted)} of {_count(proposed, 'presentation context')} ({limit})"
    if by_us:
        ASSOCIATION.info("Accepted association from %s: %s", _ae(peer), counted)
    else:
        ASSOCIATION.info("Association accepted by %s: %s", _ae(peer), counted)
    if _association_on(DEBUG):
        lines: list[tuple[int, str]] = [
            (cid, f"  context {cid}: {sop_class_name(abstract)}: {sop_class_name(syntax)} "
                  f"({_accepted_roles(scu, scp)})")
            for cid, abstract, syntax, scu, scp in accepted]
        lines += [(cid, f"  context {cid}: {sop_class_name(abstract)}: refused ({context_result(result)})")
                  for cid, abstract, result in refused]
        heading = f"A-ASSOCIATE-AC to {_ae(peer)}:" if by_us else f"A-ASSOCIATE-AC from {_ae(peer)}:"
        ASSOCIATION.debug("\n".join([heading, *(line for _, line in sorted(lines)),
                                     f"  max PDU length: {max_pdu or 'no limit'}",
                                     _implementation(implementation)]))


def association_rejected(*, peer: str, result: int, source: int, reason: int, by_us: bool = False) -> None:
    """The A-ASSOCIATE-RJ (PS3.8 9.3.4), with its meaning (PS3.8 Table 9-21). INFO:
    ``Association rejected by ORTHANC (permanent): called AE title not recognised``;
    DEBUG: the result, source and reason as numbers and words."""
    if not _association_on(INFO):
        return
    why = f"({reject_result(result)}): {reject_reason(source, reason)}"
    if by_us:
        ASSOCIATION.info("Rejected association from %s %s", _ae(peer), why)
    else:
        ASSOCIATION.info("Association rejected by %s %s", _ae(peer), why)
    if _association_on(DEBUG):
        ASSOCIATION.debug("A-ASSOCIATE-RJ: result %d (%s), source %d (%s), reason %d (%s)",
                          result, reject_result(result), source, reject_source(source), reason,
                          reject_reason(source, reason))


def released(*, peer: str, by_peer: bool, seconds: float | None = None) -> None:
    """The association was released (A-RELEASE, PS3.8 7.2), at the peer's request or
    ours; ``seconds``: how long it lasted."""
    if not _association_on(INFO):
        return
    text = f"Association released by {_ae(peer)}" if by_peer else f"Released association with {_ae(peer)}"
    ASSOCIATION.info("%s%s", text, _after(seconds))


def aborted(*, peer: str, source: int, reason: int, by_us: bool, why: str = "",
            seconds: float | None = None) -> None:
    """The association was aborted (A-ABORT, PS3.8 7.3, 9.3.8), with the meaning of its
    source and reason (PS3.8 Table 9-26): WARNING when the peer aborted, INFO when we did."""
    level = INFO if by_us else logging.WARNING
    if not _association_on(level):
        return
    meaning = abort_source(source)
    if abort_reason(source, reason):
        meaning += f": {abort_reason(source, reason)}"
    because = f": {printable(why, 200)}" if why else ""
    if by_us:
        ASSOCIATION.info("Aborted association with %s%s (%s)%s", _ae(peer), because, meaning, _after(seconds))
    else:
        ASSOCIATION.warning("Association aborted by %s (%s)%s%s", _ae(peer), meaning, because, _after(seconds))


def message(direction: Direction, *, peer: str, context_id: int, command: Mapping[int, bytes],
            dataset: bytes | bytearray | memoryview | None, transfer_syntax: str | None,
            name_peer: bool = False) -> None:
    """A DIMSE message sent or received. INFO: one line — its command, Message ID, context,
    SOP class, and for a response its status and meaning, sub-operation counts, Error
    Comment; ``name_peer`` names the peer in it too (for a server with many). DEBUG: the
    command set and the dataset, one element a line, every PN withheld; a dataset over
    64 KiB is one line with its size. Never raises."""
    if not _dimse_on(INFO):
        return
    try:
        text = summary(command, context_id)
        if name_peer:
            name, _, rest = text.partition(" ")
            text = f"{name} {'to' if direction == 'sent' else 'from'} {_ae(peer)} {rest}"
        DIMSE.info("%s %s", "Sending" if direction == "sent" else "Received", text)
        if _dimse_on(DEBUG):
            from pacskit.dataset_dump import dump_command, dump_dataset

            lines = dump_command(command)
            if dataset is not None:
                lines += dump_dataset(dataset, transfer_syntax)
            DIMSE.debug("\n".join(lines))
    except Exception as exc:  # noqa: BLE001 - logging must never break an association
        DIMSE.warning("a DIMSE message could not be logged (%s)", error_name(exc))


def pdu(direction: Direction, *, peer: str, pdu_type: int, length: int) -> None:
    """A PDU sent or received (PS3.8 9.3.1), at DEBUG: its type and length."""
    if not _pdu_on(DEBUG):
        return
    if direction == "sent":
        PDU.debug("Sent %s PDU to %s (%d bytes)", pdu_type_name(pdu_type), _ae(peer), length)
    else:
        PDU.debug("Received %s PDU from %s (%d bytes)", pdu_type_name(pdu_type), _ae(peer), length)


def operation(*, peer: str, service: str, outcome: str, detail: str = "", seconds: float) -> None:
    """An operation the archive performed for ``peer`` (``C-FIND``, ``C-STORE``...), with
    its ``outcome`` (``success``, ``warning``, ``failure``, ``cancel``, as
    :class:`pacskit.net.status.Outcome`): INFO, or WARNING for a failure."""
    shown = str(getattr(outcome, "value", outcome))
    level = logging.WARNING if shown == "failure" else INFO
    if not _archive_on(level):
        return
    ARCHIVE.log(level, "%s for %s: %s%s in %.3f s", service, _ae(peer), shown,
                f" ({printable(detail, 200)})" if detail else "", seconds)


def _proposed(contexts: Sequence[ProposedContext], roles: Mapping[str, tuple[bool, bool]], max_pdu: int,
              implementation: tuple[str, str]) -> list[str]:
    lines = [f"  context {cid}: {sop_class_name(abstract)} "
             f"[{', '.join(sop_class_name(s) for s in syntaxes)}] ({_proposed_roles(roles.get(abstract))})"
             for cid, abstract, syntaxes in contexts]
    return [*lines, f"  max PDU length: {max_pdu or 'no limit'}", _implementation(implementation)]


def _proposed_roles(proposal: tuple[bool, bool] | None) -> str:
    if proposal is None:
        return "SCU role"
    scu, scp = proposal
    if scu and scp:
        return "SCU and SCP roles proposed"
    if scp:
        return "SCP role proposed"
    return "SCU role proposed" if scu else "default roles proposed"


def _accepted_roles(scu: bool, scp: bool) -> str:
    if scu and scp:
        return "SCU and SCP roles"
    if scp:
        return "SCP role"
    return "SCU role" if scu else "no role"


def _implementation(implementation: tuple[str, str]) -> str:
    uid, version = implementation
    return f"  implementation: {printable(uid) or '(none)'} {printable(version) or '(no version name)'}"


def _ae(title: str) -> str:
    return printable(title.strip(), 100) or "(no AE title)"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _after(seconds: float | None) -> str:
    return "" if seconds is None else f" after {seconds:.3f} s"
