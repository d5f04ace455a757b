"""Storage service, SCU side (PS3.4 Annex B): sending files with C-STORE.

Files are sent as they are on disk — the dataset bytes streamed from the file, never
decoded — (an instance held in memory, :class:`~pacskit.scan.HeldInstance`, from its
bytes) over a presentation context with the file's own transfer syntax. When the peer
does not accept that syntax, the file is decoded, decompressed if pydicom can, and sent
in Implicit VR Little Endian, which every SCP supports (:mod:`pacskit.conversion`: in a
child process when this one started without pydicom's pixel back-ends).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import BinaryIO, Protocol, TypeVar

from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context
from pynetdicom.presentation import PresentationContext

from pacskit import conversion
from pacskit.errors import AssociationAborted, NetworkError, NetworkTimeout, ServiceNotSupported
from pacskit.net.association import Association, associate
from pacskit.net.commands import ERROR_COMMENT, STATUS, c_store_rq
from pacskit.net.contexts import MAX_CONTEXTS
from pacskit.net.exchange import MessageExchange
from pacskit.net.status import Outcome, describe_store, outcome_of
from pacskit.net.wire import Message
from pacskit.nodes import Node
from pacskit.scan import DicomFile, HeldInstance
from pacskit.settings import Settings

UNCOMPRESSED_LE = (ImplicitVRLittleEndian, ExplicitVRLittleEndian)


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one file: ``status`` is None when it was not sent at all."""

    file: DicomFile | HeldInstance
    status: int | None
    reason: str = ""
    converted: bool = False

    @property
    def outcome(self) -> Outcome:
        return Outcome.FAILURE if self.status is None else outcome_of(self.status)


OutcomeHandler = Callable[[SendOutcome], None]


class Encoded(Protocol):
    """Anything with a SOP class and a transfer syntax: a file to send, a stored instance."""

    @property
    def sop_class_uid(self) -> str: ...

    @property
    def transfer_syntax(self) -> str: ...


E = TypeVar("E", bound=Encoded)


def contexts_for(files: Sequence[Encoded]) -> list[PresentationContext]:
    """One context per (SOP class, transfer syntax) the files use, each with that one
    syntax, and one Implicit VR Little Endian context per SOP class (the syntax every
    SCP supports, PS3.5 10.1) for files whose own syntax the peer refuses."""
    return [build_context(sop_class, syntax)
            for sop_class, syntaxes in _syntaxes_by_class(files).items() for syntax in syntaxes]


def batches(files: Sequence[E]) -> Iterator[list[E]]:
    """The files in groups whose contexts (see :func:`contexts_for`) fit in one
    association (128 at most, PS3.8 9.3.2.2)."""
    batch: list[E] = []
    used = 0
    for sop_class, syntaxes in _syntaxes_by_class(files).items():
        group = [f for f in files if f.sop_class_uid == sop_class]
        for part, needed in _split_class(group, syntaxes):
            if batch and used + needed > MAX_CONTEXTS:
                yield batch
                batch, used = [], 0
            batch.extend(part)
            used += needed
    if batch:
        yield batch


def _split_class(group: list[E], syntaxes: list[str]) -> Iterator[tuple[list[E], int]]:
    """One SOP class's files in parts that need at most 128 contexts each, with the
    number each part needs: its own syntaxes and Implicit VR Little Endian."""
    own = [s for s in syntaxes if s != ImplicitVRLittleEndian]
    step = MAX_CONTEXTS - 1
    for start in range(0, max(len(own), 1), step):
        chunk = set(own[start:start + step]) | ({ImplicitVRLittleEndian} if start == 0 else set())
        yield [f for f in group if f.transfer_syntax in chunk], len(chunk - {ImplicitVRLittleEndian}) + 1


def _syntaxes_by_class(files: Sequence[Encoded]) -> dict[str, list[str]]:
    by_class: dict[str, dict[str, None]] = {}
    for item in files:
        by_class.setdefault(item.sop_class_uid, {ImplicitVRLittleEndian: None})[item.transfer_syntax] = None
    return {sop_class: list(syntaxes) for sop_class, syntaxes in by_class.items()}


MAX_LOST_IN_A_ROW = 3
"""Associations lost one after the other, with no response to any C-STORE in between,
after which a store gives up on the files left."""


def send_files(settings: Settings, node: Node, files: Sequence[DicomFile],
               on_outcome: OutcomeHandler) -> None:
    """C-STORE ``files`` to ``node``, over as few associations as the context limit allows.

    Each file's outcome goes to ``on_outcome``; a failure status is that file's failure
    and the others are still sent. When the association is lost mid-store — the peer
    aborts (as Orthanc does after its DicomScpTimeout when a dataset never ends), the
    connection drops, or no response comes within the DIMSE timeout — the file in flight
    is set aside and the others go on over a new association; the files set aside are
    tried once more at the end, and fail if the association is lost again.

    Raises:
        NetworkError: an association could not be opened, :data:`MAX_LOST_IN_A_ROW`
            were lost in a row, or associations were lost and no file got a response
            (every file not sent is reported, with no status, first).
        ServiceNotSupported: the peer accepted none of the SOP classes.
    """
    run = StoreRun(settings, node, on_outcome)
    sendable = run.sendable_files(files)
    try:
        for batch, last_try in run.rounds(sendable):
            run.send(batch, last_try=last_try)
    except (NetworkError, ServiceNotSupported) as exc:
        run.fail([f for f in sendable if f not in run.reported], str(exc))
        raise
    run.check_answered()


class StoreRun:
    """The associations of one :func:`send_files`, opened again when one is lost: the
    files' order (:meth:`rounds`), each one's outcome, and when to give up."""

    def __init__(self, settings: Settings, node: Node, on_outcome: OutcomeHandler) -> None:
        self.settings = settings
        self.node = node
        self.on_outcome = on_outcome
        self.reported: set[DicomFile | HeldInstance] = set()
        self.set_aside: list[DicomFile] = []
        self.answered = 0
        self.lost: NetworkError | None = None
        self.lost_in_a_row = 0

    def sendable_files(self, files: Sequence[DicomFile]) -> list[DicomFile]:
        """The files :meth:`sendable` keeps."""
        return [f for f in files if self.sendable(f)]

    def rounds(self, sendable: list[DicomFile]) -> Iterator[tuple[list[DicomFile], bool]]:
        """The batches to send, each with whether it is the last try for its files: those
        of :func:`batches`, then (once they are sent) those of the files set aside."""
        for batch in batches(sendable):
            yield batch, False
        again, self.set_aside = self.set_aside, []
        for batch in batches(again):
            yield batch, True

    def check_answered(self) -> None:
        """Raise the last loss if associations were lost and no file got a response."""
        if self.lost is not None and not self.answered:
            raise self.lost

    def check_accepted(self, association: Association | MessageExchange) -> None:
        """Raise :class:`ServiceNotSupported` if the peer accepted no context."""
        if not association.contexts:
            raise ServiceNotSupported(f"{self.node.label} accepted none of the storage SOP classes offered")

    def sendable(self, item: DicomFile) -> bool:
        """Whether the file's UIDs can be carried by a C-STORE request (1 to 64 ASCII
        characters, PS3.5 9.1); if not, its failure is reported."""
        for what, value in (("SOP Class UID", item.sop_class_uid), ("SOP Instance UID", item.sop_instance_uid)):
            if not (0 < len(value) <= 64 and value.isascii()):
                self.report(SendOutcome(item, None, f"its {what} is not a UID ({value[:40]!r})"))
                return False
        return True

    def send(self, batch: list[DicomFile], *, last_try: bool) -> None:
        """Send ``batch``, on a new association each time one is lost mid-store; the file
        in flight then is set aside, or fails on its ``last_try``.

        Raises:
            NetworkError, ServiceNotSupported: as :func:`send_files` says.
        """
        pending = deque(batch)
        while pending:
            opened = False
            try:
                with associate(self.settings, self.node, contexts_for(batch)) as assoc:
                    self.check_accepted(assoc)
                    opened = True
                    sender = FileSender(assoc, storage_targets(assoc),
                                        conversion_timeout=conversion_timeout(self.settings))
                    if any((f.sop_class_uid, f.transfer_syntax) not in sender.contexts for f in pending):
                        conversion.warm()
                    while pending:
                        self.report(sender.send(pending[0]))
                        pending.popleft()
            except (AssociationAborted, NetworkTimeout) as exc:
                if not opened:
                    raise
                self.lost_with(exc, pending, last_try)

    def report(self, outcome: SendOutcome) -> None:
        self.reported.add(outcome.file)
        if outcome.status is not None:
            self.answered += 1
            self.lost_in_a_row = 0
        self.on_outcome(outcome)

    def fail(self, items: list[DicomFile], reason: str) -> None:
        for item in items:
            self.report(SendOutcome(item, None, reason))

    def lost_with(self, exc: NetworkError, pending: deque[DicomFile], last_try: bool) -> None:
        """The association was lost with ``pending`` still to send: the first of them (in
        flight) set aside, or failed on its ``last_try``.

        Raises:
            NetworkError: :data:`MAX_LOST_IN_A_ROW` associations were lost in a row.
        """
        self.lost = exc
        if not pending:
            return
        self.lost_in_a_row += 1
        item = pending.popleft()
        if last_try:
            self.report(SendOutcome(item, None, f"the association was lost while sending it, twice: {exc}"))
        else:
            self.set_aside.append(item)
        if self.lost_in_a_row >= MAX_LOST_IN_A_ROW:
            raise type(exc)(f"{self.lost_in_a_row} associations in a row were lost ({exc})")


def storage_targets(association: Association | MessageExchange) -> dict[tuple[str, str], int]:
    """The context ID for each accepted (SOP class, transfer syntax) on which we may send
    C-STORE requests (as requestor, or as acceptor where the peer took the SCP role)."""
    return {(cx.abstract_syntax, str(cx.transfer_syntax)): cx.context_id
            for cx in association.contexts.values() if cx.as_scu}


class FileSender:
    """Sends files with C-STORE requests over an association, each over the context
    with its own transfer syntax, or converted to an uncompressed syntax the peer accepted.

    Args:
        association: the association.
        contexts: the presentation context ID for each accepted (SOP class, transfer
            syntax) that we may send C-STORE requests on (:func:`storage_targets`).
        move_originator: for the sub-operations of a C-MOVE, the AE title and Message
            ID of the C-MOVE-RQ (PS3.7 9.3.1.1).
        conversion_timeout: the seconds a conversion in a child may take
            (:func:`conversion_timeout`; the conversion module's default when None).
    """

    def __init__(self, association: Association, contexts: dict[tuple[str, str], int],
                 move_originator: tuple[str, int] | None = None, *,
                 conversion_timeout: float | None = None) -> None:
        self.association = association
        self.contexts = contexts
        self.move_originator = move_originator
        self.conversion_timeout = conversion_timeout

    def send(self, item: DicomFile | HeldInstance) -> SendOutcome:
        """C-STORE one file (or instance held in memory) and wait for its response.

        Raises:
            AssociationAborted, NetworkTimeout: the association is lost.
        """
        with self.prepared(item) as request:
            if isinstance(request, SendOutcome):
                return request
            response = next(self.association.request(request.context_id, request.command, request.data,
                                                     message_id=request.message_id))
        return self.outcome(item, response, request.converted)

    @contextmanager
    def prepared(self, item: DicomFile | HeldInstance) -> Iterator[OutgoingStore | SendOutcome]:
        """The C-STORE request of one file, its dataset as the file's own bytes (an open
        file, closed when the block ends, or the bytes held) or converted; or the file's
        failure when it cannot be sent."""
        label = self.association.label
        context = self.contexts.get((item.sop_class_uid, item.transfer_syntax))
        if item.size <= item.dataset_offset:
            yield SendOutcome(item, None, "the file has no dataset after its file meta information")
            return
        message_id = self.association.next_message_id()
        command = c_store_rq(message_id, item.sop_class_uid, item.sop_instance_uid, self.move_originator)
        # PS3.5 A.5: an odd deflated stream is padded with one 00H byte.
        odd = (item.size - item.dataset_offset) % 2
        if context is not None and isinstance(item, HeldInstance):
            held = BytesIO(item.data)
            held.seek(item.dataset_offset)
            yield OutgoingStore(context, command, held.read() + b"\0" if odd else held, message_id, converted=False)
            return
        if context is not None:
            try:
                fh = item.path.open("rb")
            except OSError as exc:
                yield SendOutcome(item, None, f"cannot read the file: {exc.strerror or exc}")
                return
            with fh:
                fh.seek(item.dataset_offset)
                data = fh.read() + b"\0" if odd else fh
                yield OutgoingStore(context, command, data, message_id, converted=False)
            return
        syntax, context = next(((s, self.contexts[(item.sop_class_uid, s)]) for s in UNCOMPRESSED_LE
                                if (item.sop_class_uid, s) in self.contexts), (None, None))
        if syntax is None or context is None:
            yield SendOutcome(item, None, f"{label} does not accept SOP class {UID(item.sop_class_uid).name}")
            return
        try:
            converted = _converted(item, UID(syntax), self.conversion_timeout)
        except Exception as exc:  # noqa: BLE001 - any codec failure: cannot convert
            yield SendOutcome(item, None, f"{label} does not accept {UID(item.transfer_syntax).name} and "
                                          f"pacskit cannot decompress it ({conversion.reason(exc)})")
            return
        if isinstance(converted, bytes):
            yield OutgoingStore(context, command, converted, message_id, converted=True)
            return
        with converted:
            yield OutgoingStore(context, command, converted, message_id, converted=True)

    def outcome(self, item: DicomFile | HeldInstance, response: Message, converted: bool) -> SendOutcome:
        """The outcome of one file from its C-STORE-RSP (PS3.4 B.2.3)."""
        status = response.us(STATUS)
        if status is None:
            return SendOutcome(item, None, "the peer's C-STORE response has no status", converted)
        if outcome_of(status) is Outcome.FAILURE:
            comment = response.text(ERROR_COMMENT)
            reason = f"C-STORE failed at {self.association.label}: {describe_store(status)}"
            return SendOutcome(item, status, reason + (f": {comment}" if comment else ""), converted)
        return SendOutcome(item, status, "", converted)


@dataclass(frozen=True)
class OutgoingStore:
    """One C-STORE-RQ ready to go: its context, command, dataset and Message ID."""

    context_id: int
    command: bytes
    data: bytes | BinaryIO
    message_id: int
    converted: bool


def _converted(item: DicomFile | HeldInstance, syntax: UID, timeout: float | None) -> bytes | BinaryIO:
    return conversion.converted(item.data if isinstance(item, HeldInstance) else item.path, syntax, timeout)


def conversion_timeout(settings: Settings) -> float:
    """The seconds a conversion in a child may take: ``conversion_timeout``, or the DIMSE
    timeout when it is unset."""
    return settings.conversion_timeout if settings.conversion_timeout is not None else settings.dimse_timeout
