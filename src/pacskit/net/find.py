"""Query/Retrieve FIND, SCU side (PS3.4 C.4.1)."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager

from pydicom import Dataset
from pynetdicom import build_context
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made by globals()
    ModalityWorklistInformationFind,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from pacskit.errors import DimseError, ServiceNotSupported
from pacskit.net.association import Association, associate
from pacskit.net.commands import ERROR_COMMENT, STATUS, c_cancel_rq, c_find_rq
from pacskit.net.exchange import MessageExchange
from pacskit.net.identifier import decode_identifier
from pacskit.net.status import Outcome, check_status, outcome_of
from pacskit.net.ul.negotiation import AcceptedContext
from pacskit.net.wire import Message
from pacskit.nodes import Node
from pacskit.settings import Settings

MAX_IDENTIFIER = 16 << 20
FIND_SOP_CLASSES = {
    "patient": PatientRootQueryRetrieveInformationModelFind,
    "study": StudyRootQueryRetrieveInformationModelFind,
    "worklist": ModalityWorklistInformationFind,
}


class Final(enum.Enum):
    """The final response of a C-FIND (no match in it)."""

    FINAL = "final"


FINAL = Final.FINAL


class FindExchange:
    """What one association's C-FIND requests and responses mean, without I/O: the
    request of an identifier, and the match (or the end) each response brings. Shared
    by :class:`FindSession` and :class:`pacskit.net.aio_find.AsyncFindSession`."""

    def __init__(self, node: Node, model: str, context: AcceptedContext) -> None:
        self.node = node
        self.sop_class = FIND_SOP_CLASSES[model]
        self.context_id = context.context_id
        syntax = context.transfer_syntax
        self._syntax = syntax
        self._encoding = (syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)

    def request(self, message_id: int, identifier: Dataset) -> tuple[bytes, bytes]:
        """The C-FIND-RQ command set and its identifier, encoded (PS3.7 9.1.2.1).

        Raises:
            DimseError: the identifier cannot be encoded.
        """
        request = encode(identifier, *self._encoding)
        if request is None:
            raise DimseError("the C-FIND identifier cannot be encoded")
        return c_find_rq(message_id, self.sop_class), request

    def answer(self, response: Message) -> Dataset | None | Final:
        """The match a C-FIND-RSP brings (None: a pending response without one), or
        :data:`FINAL` for the final response (PS3.4 C.4.1.1.4).

        Raises:
            DimseFailure: a failure status.
            DimseError: no status, or an identifier that cannot be decoded.
        """
        status = response.us(STATUS)
        if status is None:
            raise DimseError(f"{self.node.label} sent a C-FIND response without a status")
        check_status(status, response.text(ERROR_COMMENT), "C-FIND", self.node)
        if outcome_of(status) is not Outcome.PENDING:
            return FINAL
        if response.data is None:
            return None
        try:
            return decode_identifier(response.data, self._syntax)
        except ValueError as exc:
            raise DimseError(f"{self.node.label} sent a C-FIND identifier that cannot be decoded: "
                             f"{exc}") from None


class FindSession(FindExchange):
    """One association over which any number of C-FIND requests are sent in turn, the
    messages written and read by the calling thread."""

    def __init__(self, association: Association, node: Node, model: str, context: AcceptedContext) -> None:
        super().__init__(node, model, context)
        self.association = association

    def find(self, identifier: Dataset, limit: int | None = None) -> Iterator[Dataset]:
        """Send one C-FIND and yield the identifier of every pending response.

        After ``limit`` matches a C-CANCEL is sent (PS3.7 9.3.2.3) and the remaining
        responses are read without being yielded. Consume the generator to the end
        before sending the next request.

        Raises:
            DimseFailure: a failure status.
            NetworkTimeout, AssociationAborted: no response, or the association is lost.
            DimseError: a response identifier that cannot be decoded.
        """
        message_id = self.association.next_message_id()
        command, request = self.request(message_id, identifier)
        count = 0
        cancelled = False
        for response in self.association.request(self.context_id, command, request, message_id=message_id):
            match = self.answer(response)
            if match is FINAL:
                return
            if cancelled or match is None:
                continue
            yield match
            count += 1
            if limit is not None and count >= limit:
                self.association.send(self.context_id, c_cancel_rq(message_id))
                cancelled = True


@contextmanager
def find_session(settings: Settings, node: Node, model: str) -> Iterator[FindSession]:
    """An association for C-FIND in the ``patient`` or ``study`` root model, or the
    Modality Worklist information model (``worklist``, PS3.4 K.6.1).

    Raises:
        NetworkError: the association failed.
        ServiceNotSupported: the peer does not offer this information model.
    """
    with associate(settings, node, [build_context(FIND_SOP_CLASSES[model])]) as assoc:
        yield FindSession(assoc, node, model, find_context(assoc, node, model))


def find_context(association: MessageExchange, node: Node, model: str) -> AcceptedContext:
    """The accepted C-FIND context of ``model`` (answers of up to :data:`MAX_IDENTIFIER`
    bytes are then accepted).

    Raises:
        ServiceNotSupported: the peer does not offer this information model.
    """
    context = next(iter(association.contexts.values()), None)
    if context is None:
        name = "Modality Worklist" if model == "worklist" else f"{model}-root"
        raise ServiceNotSupported(f"{node.label} does not offer C-FIND in the {name} information model")
    association.max_data = MAX_IDENTIFIER
    return context
