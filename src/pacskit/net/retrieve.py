"""Query/Retrieve GET and MOVE, SCU side (PS3.4 C.4.2, C.4.3).

A :class:`RetrieveSession` holds one association and sends any number of C-GET or C-MOVE
requests over it. For C-GET the same association carries the C-STORE sub-operations back
to us (SCP/SCU role selection, PS3.7 D.3.3.4); each is handed, still encoded, to the
``on_instance`` callback.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Generic, TypeVar

from pydicom import Dataset
from pynetdicom import build_context
from pynetdicom.dsutils import encode
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made by globals()
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from pacskit.encoded import file_meta
from pacskit.errors import AssociationAborted, NoStorageRole, PacskitError, ServiceNotSupported
from pacskit.net.association import Association, associate
from pacskit.net.commands import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    C_GET_RSP,
    C_MOVE_RSP,
    C_STORE_RQ,
    COMMAND_FIELD,
    COMPLETED_SUBOPERATIONS,
    ERROR_COMMENT,
    FAILED_SUBOPERATIONS,
    MESSAGE_ID,
    REMAINING_SUBOPERATIONS,
    STATUS,
    WARNING_SUBOPERATIONS,
    c_get_rq,
    c_move_rq,
    c_store_rsp,
)
from pacskit.net.contexts import retrieve_storage_contexts
from pacskit.net.exchange import MessageExchange
from pacskit.net.identifier import decode_identifier
from pacskit.net.status import Outcome, check_status, outcome_of
from pacskit.net.ul.negotiation import AcceptedContext
from pacskit.net.wire import DataSink, Fragment, Message
from pacskit.nodes import Node
from pacskit.settings import Settings
from pacskit.transfer_syntax import TransferSyntax

GET_SOP_CLASSES = {
    "patient": PatientRootQueryRetrieveInformationModelGet,
    "study": StudyRootQueryRetrieveInformationModelGet,
}
MOVE_SOP_CLASSES = {
    "patient": PatientRootQueryRetrieveInformationModelMove,
    "study": StudyRootQueryRetrieveInformationModelMove,
}

STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_SOP_CLASS_NOT_SUPPORTED = 0x0122


@dataclass
class RetrieveResponse:
    """One C-GET-RSP or C-MOVE-RSP (PS3.7 9.1.3.1, 9.1.4.1): its status, comment,
    sub-operation counts and, in a final response, the Failed SOP Instance UID List."""

    status: int
    comment: str = ""
    remaining: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None
    failed_instances: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RetrieveRequestKind:
    """A C-GET or a C-MOVE as a session sends it: its name, SOP class, the command field
    of its responses, and its command for a Message ID."""

    service: str
    sop_class: str
    response_field: int
    command: Callable[[int], bytes]


@dataclass
class SubOperations:
    """Sub-operation counts from a C-GET/C-MOVE response (PS3.7 C.4.2.1.6)."""

    remaining: int | None = None
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_instances: list[str] = field(default_factory=list)
    status: int = 0

    @property
    def total(self) -> int | None:
        """Total sub-operations, once the peer has told us."""
        if self.remaining is None:
            return None
        return self.remaining + self.completed + self.failed + self.warning

    def update(self, response: RetrieveResponse) -> None:
        if response.remaining is not None:
            self.remaining = response.remaining
        for name in ("completed", "failed", "warning"):
            value = getattr(response, name)
            if value is not None:
                setattr(self, name, value)


LOG = logging.getLogger(__name__)
SPOOL_AFTER = 32 << 20
X = TypeVar("X", bound=MessageExchange)
Received = bytes | BinaryIO
"""A received instance in DICOM Part 10 form: bytes, or (past :data:`SPOOL_AFTER` bytes)
a temporary file positioned at its start."""
InstanceHandler = Callable[[Received], None]
AsyncInstanceHandler = Callable[[Received], Awaitable[None]]
"""An ``on_instance`` awaited on the event loop: the C-STORE-RSP waits for it (a
forward, :mod:`pacskit.aio_forward`); it refuses an instance as
:data:`InstanceHandler` does, by raising :class:`InstanceRejected`."""
ProgressHandler = Callable[[SubOperations], None]


class InstanceRejected(PacskitError):
    """Raised by an ``on_instance`` callback to refuse one sub-operation's instance.

    Attributes:
        status: the C-STORE failure status to answer (0xA700 out of resources by default).
    """

    def __init__(self, message: str, status: int = STATUS_OUT_OF_RESOURCES) -> None:
        super().__init__(message)
        self.status = status


class RetrieveExchange(Generic[X]):
    """One association over which C-GET or C-MOVE requests are sent, on either driver:
    :class:`RetrieveSession` (blocking) or
    :class:`~pacskit.net.aio_retrieve.AsyncRetrieveSession` (asyncio).

    For C-GET, the association's handler for C-STORE requests is this session: each
    sub-operation on a storage context where we took the SCP role is handed, still
    encoded, to ``on_instance``; one on any other context is refused (0x0122) without
    its dataset being kept.

    Attributes:
        refused: the SOP Instance UIDs of the C-GET sub-operations we answered with a
            failure (the instance arrived but was not kept).
        answered: once set to a dict, the status we answered to each C-GET
            sub-operation, by SOP Instance UID.
    """

    def __init__(self, association: X, node: Node, model: str, method: str,
                 on_instance: InstanceHandler | None = None) -> None:
        self.association = association
        self.node = node
        self.model = model
        self.method = method
        self.on_instance = on_instance
        self.refused: list[str] = []
        self.answered: dict[str, int] | None = None
        if on_instance is not None:
            association.handlers[C_STORE_RQ] = self

    def retrieve_request(self, destination: str | None) -> RetrieveRequestKind:
        """What a C-GET (``destination`` None) or a C-MOVE to ``destination`` sends and
        reads back on this session (PS3.7 9.1.3, 9.1.4).

        Raises:
            ServiceNotSupported: the session was opened for the other service.
        """
        if destination is None:
            if self.method != "get":
                raise ServiceNotSupported("this session was not opened for C-GET")
            get_class = GET_SOP_CLASSES[self.model]
            return RetrieveRequestKind("C-GET", get_class, C_GET_RSP,
                                       lambda message_id: c_get_rq(message_id, get_class))
        if self.method != "move":
            raise ServiceNotSupported("this session was not opened for C-MOVE")
        move_class = MOVE_SOP_CLASSES[self.model]
        return RetrieveRequestKind("C-MOVE", move_class, C_MOVE_RSP,
                                   lambda message_id: c_move_rq(message_id, move_class, destination))

    def prepared(self, identifier: Dataset, sop_class: str, service: str) -> tuple[AcceptedContext, bytes | None]:
        """The context of ``sop_class`` and the identifier encoded in its syntax.

        Raises:
            ServiceNotSupported: the peer did not accept ``sop_class``.
        """
        context = self.association.negotiated.context_for(sop_class) if self.association.negotiated else None
        if context is None:
            raise ServiceNotSupported(f"{self.node.label} does not offer {service} ({self.model}-root)")
        syntax = context.transfer_syntax
        return context, encode(identifier, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)

    def response(self, message: Message, response_field: int, service: str,
                 context: AcceptedContext) -> RetrieveResponse:
        """A C-GET-RSP or C-MOVE-RSP read.

        Raises:
            AssociationAborted: another message, or one without a status.
        """
        if message.us(COMMAND_FIELD) != response_field or message.us(STATUS) is None:
            raise AssociationAborted(f"{self.node.label} sent an unexpected message "
                                     f"(command 0x{message.us(COMMAND_FIELD) or 0:04X}) during {service}")
        return _response_of(message, context.transfer_syntax)

    def open(self, association: MessageExchange, context: AcceptedContext, message: Message) -> DataSink | None:
        """Where the dataset of a C-STORE sub-operation goes, once its command is read:
        a :class:`ReceivedInstance`, or nowhere when we may not store on this context."""
        if not context.as_scp or message.text(AFFECTED_SOP_CLASS_UID) != context.abstract_syntax:
            return _Dropped()
        return ReceivedInstance(file_meta(message.text(AFFECTED_SOP_CLASS_UID),
                                          message.text(AFFECTED_SOP_INSTANCE_UID),
                                          str(context.transfer_syntax), self.node.ae_title))

    def handle(self, association: MessageExchange, context: AcceptedContext, message: Message) -> None:
        """Answer a C-STORE sub-operation (PS3.4 C.4.3.3: a C-GET's instances come back
        on the same association)."""
        status = self.early_status(context, message, self.on_instance is not None)
        if status is None:
            assert isinstance(message.sink, ReceivedInstance) and self.on_instance is not None
            try:
                status = message.sink.status(self.on_instance)
            finally:
                message.sink.discard()
        self.answer_store(association, message, status)

    def early_status(self, context: AcceptedContext, message: Message, handled: bool) -> int | None:
        """The status of a C-STORE sub-operation that is not handed to ``on_instance``
        (on a context where we are not the SCP, without a dataset, without a handler),
        else None."""
        if isinstance(message.sink, _Dropped):
            LOG.warning("%s sent a C-STORE on presentation context %d (%s), where pacskit is not the "
                        "Storage SCP; refused", self.node.label, context.context_id, context.abstract_syntax)
            return STATUS_SOP_CLASS_NOT_SUPPORTED
        if not isinstance(message.sink, ReceivedInstance) or not handled:
            return STATUS_CANNOT_UNDERSTAND
        return None

    def answer_store(self, association: MessageExchange, message: Message, status: int) -> None:
        """Send the C-STORE-RSP of a sub-operation, noting a refusal."""
        sop_class = message.text(AFFECTED_SOP_CLASS_UID)
        sop_instance = message.text(AFFECTED_SOP_INSTANCE_UID)
        if status != 0x0000:
            self.refused.append(sop_instance)
        if self.answered is not None:
            self.answered[sop_instance] = status
        association.send(message.context_id,
                         c_store_rsp(message.us(MESSAGE_ID) or 0, sop_class, sop_instance, status))

    def counted(self, counts: SubOperations, response: RetrieveResponse, service: str,
                progress: ProgressHandler | None) -> bool:
        """Count one response in ``counts``; whether it is the last (PS3.4 C.4.2.1.6).

        Raises:
            DimseFailure: a failure status (but 0xA702, sub-operations failed, counted).
        """
        counts.update(response)
        counts.status = response.status
        if _sub_operations_failed(response, counts):
            counts.failed_instances = response.failed_instances
            return True
        check_status(response.status, response.comment, service, self.node)
        if progress is not None:
            progress(counts)
        if outcome_of(response.status) is not Outcome.PENDING:
            counts.failed_instances = response.failed_instances
            counts.remaining = response.remaining or 0
            return True
        return False


class RetrieveSession(RetrieveExchange[Association]):
    """A :class:`RetrieveExchange` on a blocking :class:`~pacskit.net.association.Association`."""

    @property
    def local_address(self) -> str:
        """Our IP address on this association (as the peer sees it), or "" once closed."""
        return self.association.transport.local_address

    def c_get(self, identifier: Dataset, progress: ProgressHandler | None = None) -> SubOperations:
        """Send one C-GET and wait for its final response, storing what comes back.

        Raises:
            DimseFailure, NetworkTimeout, AssociationAborted: the C-GET failed.
        """
        return self._follow(self._responses(identifier, self.retrieve_request(None)), "C-GET", progress)

    def c_move(self, identifier: Dataset, destination: str,
               progress: ProgressHandler | None = None) -> SubOperations:
        """Send one C-MOVE to ``destination`` (an AE title) and wait for its final response.

        Raises:
            MoveDestinationUnknown: the peer does not know ``destination`` (0xA801).
            DimseFailure, NetworkTimeout, AssociationAborted: the C-MOVE failed.
        """
        return self._follow(self._responses(identifier, self.retrieve_request(destination)), "C-MOVE", progress)

    def _responses(self, identifier: Dataset, kind: RetrieveRequestKind) -> Iterator[RetrieveResponse]:
        context, encoded = self.prepared(identifier, kind.sop_class, kind.service)
        message_id = self.association.next_message_id()
        for message in self.association.request(context.context_id, kind.command(message_id), encoded,
                                               message_id=message_id):
            yield self.response(message, kind.response_field, kind.service, context)

    def _follow(self, responses: Iterator[RetrieveResponse], service: str,
                progress: ProgressHandler | None) -> SubOperations:
        counts = SubOperations()
        for response in responses:
            if self.counted(counts, response, service, progress):
                break
        return counts


class _Dropped:
    """The dataset of a C-STORE we refuse: nothing of it is kept."""

    def write(self, data: Fragment) -> None:
        pass

    def discard(self) -> None:
        pass


def _response_of(message: Message, syntax: TransferSyntax) -> RetrieveResponse:
    identifier = None
    if message.data:
        try:
            identifier = decode_identifier(message.data, syntax)
        except ValueError as exc:  # an unreadable identifier only loses the failed-UID list
            LOG.warning("the identifier of a %s response is ignored: %s",
                        "C-GET" if message.us(COMMAND_FIELD) == C_GET_RSP else "C-MOVE", exc)
            identifier = None
    return RetrieveResponse(
        message.us(STATUS) or 0, message.text(ERROR_COMMENT),
        message.us(REMAINING_SUBOPERATIONS), message.us(COMPLETED_SUBOPERATIONS),
        message.us(FAILED_SUBOPERATIONS), message.us(WARNING_SUBOPERATIONS),
        _failed_instances(identifier),
    )


def _sub_operations_failed(response: RetrieveResponse, counts: SubOperations) -> bool:
    """A final failure status that reports sub-operations (PS3.4 C.4.2.1.5): the request
    was carried out and some or all of its sub-operations failed."""
    reported = counts.completed + counts.failed + counts.warning
    return outcome_of(response.status) is Outcome.FAILURE and reported > 0


def _failed_instances(identifier: Dataset | None) -> list[str]:
    if identifier is None or "FailedSOPInstanceUIDList" not in identifier:
        return []
    value = identifier.FailedSOPInstanceUIDList
    values = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    return [str(v) for v in values if v]


@contextmanager
def get_session(settings: Settings, node: Node, model: str, on_instance: InstanceHandler,
                storage: list[PresentationContext] | None = None) -> Iterator[RetrieveSession]:
    """An association for C-GET, with pacskit as Storage SCP for the sub-operations, on
    the ``storage`` contexts (by default those of :func:`retrieve_storage_contexts`).

    Raises:
        NetworkError: the association failed.
        ServiceNotSupported: the peer does not offer C-GET in this information model.
        NoStorageRole: the peer accepted C-GET but refused us the Storage SCP role (or
            accepted none of the ``storage`` contexts).
    """
    contexts, roles = get_proposal(model, storage)
    with associate(settings, node, contexts, roles=roles) as assoc:
        check_get_contexts(assoc, node, model)
        yield RetrieveSession(assoc, node, model, "get", on_instance)


def get_proposal(model: str, storage: list[PresentationContext] | None = None
                 ) -> tuple[list[PresentationContext], dict[str, tuple[bool, bool]]]:
    """The contexts and SCP/SCU roles a C-GET association proposes (PS3.7 D.3.3.4)."""
    if storage is None:
        storage = retrieve_storage_contexts(reserved=1)
    roles = {str(uid): (False, True) for uid in dict.fromkeys(cx.abstract_syntax for cx in storage)}
    return [build_context(GET_SOP_CLASSES[model]), *storage], roles


def check_get_contexts(association: MessageExchange, node: Node, model: str) -> None:
    """That the peer accepted C-GET and us as a Storage SCP.

    Raises:
        ServiceNotSupported, NoStorageRole: as :func:`get_session`.
    """
    get_class = GET_SOP_CLASSES[model]
    accepted = {cx.abstract_syntax for cx in association.contexts.values()}
    if get_class not in accepted:
        raise ServiceNotSupported(f"{node.label} does not offer C-GET ({model}-root)")
    if not any(cx.as_scp for cx in association.contexts.values() if cx.abstract_syntax != get_class):
        raise NoStorageRole(f"{node.label} accepted C-GET but not pacskit as Storage SCP (role selection)")


@contextmanager
def move_session(settings: Settings, node: Node, model: str) -> Iterator[RetrieveSession]:
    """An association for C-MOVE requests.

    Raises:
        NetworkError: the association failed.
        ServiceNotSupported: the peer does not offer C-MOVE in this information model.
    """
    with associate(settings, node, move_contexts(model)) as assoc:
        check_move_contexts(assoc, node, model)
        yield RetrieveSession(assoc, node, model, "move")


def move_contexts(model: str) -> list[PresentationContext]:
    """The one context a C-MOVE association proposes."""
    return [build_context(MOVE_SOP_CLASSES[model])]


def check_move_contexts(association: MessageExchange, node: Node, model: str) -> None:
    """That the peer accepted C-MOVE in ``model``.

    Raises:
        ServiceNotSupported: it did not.
    """
    if not association.contexts:
        raise ServiceNotSupported(f"{node.label} does not offer C-MOVE ({model}-root)")


class ReceivedInstance:
    """A C-STORE's dataset as the fragments it arrives in, behind its file meta
    information: a :class:`~pacskit.net.wire.DataSink`. Past :data:`SPOOL_AFTER` bytes
    it goes on in a temporary file instead of memory."""

    def __init__(self, meta: bytes) -> None:
        self.parts: list[Fragment] = [meta]
        self.size = len(meta)
        self.spool: BinaryIO | None = None
        self.failure: str | None = None

    def write(self, data: Fragment) -> None:
        """Keep one more fragment (after a spool write error, fragments are dropped)."""
        if self.failure is not None:
            return
        self.size += len(data)
        try:
            if self.spool is not None:
                self.spool.write(data)
                return
            self.parts.append(data)
            if self.size > SPOOL_AFTER:
                self.spool = tempfile.TemporaryFile(prefix="pacskit-")  # noqa: SIM115 - closed by discard
                self.spool.writelines(self.parts)
                self.parts.clear()
        except OSError as exc:
            self.discard()
            self.failure = f"cannot spool a {self.size}-byte instance: {exc.strerror or exc}"

    def status(self, on_instance: InstanceHandler) -> int:
        """The C-STORE status of handing the whole instance to ``on_instance``."""
        if self.failure is not None:
            LOG.warning("%s", self.failure)
            return STATUS_OUT_OF_RESOURCES
        return store_status(on_instance, self.encoded())

    async def status_async(self, on_instance: AsyncInstanceHandler) -> int:
        """As :meth:`status`, ``on_instance`` awaited."""
        if self.failure is not None:
            LOG.warning("%s", self.failure)
            return STATUS_OUT_OF_RESOURCES
        try:
            await on_instance(self.encoded())
        except InstanceRejected as exc:
            return exc.status
        except Exception:
            LOG.exception("taking a received instance failed")
            return STATUS_OUT_OF_RESOURCES
        return 0x0000

    def discard(self) -> None:
        self.parts.clear()
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    def encoded(self) -> Received:
        """The instance: bytes, or its spool file, positioned at its start."""
        if self.spool is None:
            return b"".join(self.parts)
        self.spool.flush()
        self.spool.seek(0)
        return self.spool


def store_status(on_instance: InstanceHandler, data: Received) -> int:
    """The C-STORE status for handing ``data`` to ``on_instance``."""
    try:
        on_instance(data)
    except InstanceRejected as exc:
        return exc.status
    except Exception:  # noqa: BLE001 - a failed write must not kill the association
        return STATUS_OUT_OF_RESOURCES
    return 0x0000
