"""DIMSE-N services on an association, both roles (PS3.7 Section 10): N-EVENT-REPORT,
N-GET, N-SET, N-ACTION, N-CREATE and N-DELETE.

As a requestor, :func:`n_create`, :func:`n_set`, :func:`n_get`, :func:`n_action`,
:func:`n_event_report` and :func:`n_delete` send one request on an accepted context and
return its :class:`NormalizedResult` — the status is the caller's to judge, as each
service class gives its statuses their own meaning (PS3.4 F.7, J.3). As an acceptor,
the request reaches :meth:`pacskit.net.acceptor.Services.normalized` as a
:class:`NormalizedRequest` and is answered from the :class:`NormalizedResponse` it
returns, or from the :class:`~pacskit.net.acceptor.DimseStatus` it raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydicom import Dataset

from pacskit.deflate import InflationLimitExceeded
from pacskit.errors import DimseError
from pacskit.net.commands import (
    ACTION_TYPE_ID,
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    ATTRIBUTE_IDENTIFIER_LIST,
    ERROR_COMMENT,
    ERROR_ID,
    EVENT_TYPE_ID,
    MESSAGE_ID,
    N_EVENT_REPORT_RQ,
    N_EVENT_REPORT_RSP,
    NORMALIZED_REQUESTS,
    OFFENDING_ELEMENT,
    STATUS,
    n_action_rq,
    n_create_rq,
    n_delete_rq,
    n_event_report_rq,
    n_get_rq,
    n_rsp,
    n_set_rq,
)
from pacskit.net.identifier import decode_identifier, encode_identifier
from pacskit.net.status import DimseStatus
from pacskit.net.ul.negotiation import AcceptedContext
from pacskit.net.wire import Message

if TYPE_CHECKING:
    from pacskit.net.association import Association

SUCCESS = 0x0000
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122


@dataclass(frozen=True)
class NormalizedRequest:
    """A normalized request as the SCP serves it.

    Attributes:
        command_field: its command (``N_CREATE_RQ``, ...).
        sop_class_uid: the Affected or Requested SOP Class UID.
        sop_instance_uid: the Affected or Requested SOP Instance UID ("" for an
            N-CREATE that leaves it to the SCP).
        dataset: the attributes it carries, decoded (None without a dataset).
        type_id: the Action Type ID of an N-ACTION, the Event Type ID of an
            N-EVENT-REPORT.
        attributes: the Attribute Identifier List of an N-GET (empty: all).
    """

    command_field: int
    sop_class_uid: str
    sop_instance_uid: str
    dataset: Dataset | None = None
    type_id: int | None = None
    attributes: tuple[int, ...] = ()

    @property
    def operation(self) -> str:
        """The service's name: ``N-CREATE``, ``N-SET``, ..."""
        return NORMALIZED_REQUESTS.get(self.command_field, f"0x{self.command_field:04X}")


@dataclass
class NormalizedResponse:
    """What an SCP answers to a :class:`NormalizedRequest`.

    Attributes:
        status: the response's status (PS3.7 C).
        sop_instance_uid: the Affected SOP Instance UID (an N-CREATE's, when the SCP
            assigned it); the request's when None.
        dataset: the attributes the response carries (N-CREATE, N-SET, N-GET, N-ACTION
            reply), if any.
        comment, offending, error_id: Error Comment, Offending Element and Error ID.
        after: called with the association once the response is sent, on the
            association's thread (a Storage Commitment report sent on the same
            association, PS3.4 J.3.3).
    """

    status: int = SUCCESS
    sop_instance_uid: str | None = None
    dataset: Dataset | None = None
    comment: str = ""
    offending: tuple[int, ...] = ()
    error_id: int | None = None
    after: Callable[[Association], None] | None = None


@dataclass(frozen=True)
class NormalizedResult:
    """The response to a normalized request we sent.

    Attributes:
        status: its status (PS3.7 C); what it means is the service class's.
        sop_instance_uid: the Affected SOP Instance UID it names, or the request's.
        dataset: the attributes it carried (None without a dataset).
        comment, offending, error_id: Error Comment, Offending Element (tags), Error ID.
        type_id: the Action or Event Type ID it echoes.
        attributes: its Attribute Identifier List (an N-GET or N-SET warning).
    """

    status: int
    sop_instance_uid: str
    dataset: Dataset | None = None
    comment: str = ""
    offending: tuple[int, ...] = ()
    error_id: int | None = None
    type_id: int | None = None
    attributes: tuple[int, ...] = field(default=())


def n_create(association: Association, context: AcceptedContext, dataset: Dataset | None,
             sop_instance_uid: str | None = None) -> NormalizedResult:
    """N-CREATE (PS3.7 10.1.5) an instance of the context's SOP class with ``dataset``;
    without ``sop_instance_uid`` the SCP assigns one (the result's)."""
    message_id = association.next_message_id()
    command = n_create_rq(message_id, context.abstract_syntax, sop_instance_uid, has_dataset=dataset is not None)
    return _request(association, context, command, message_id, dataset, sop_instance_uid or "", "N-CREATE")


def n_set(association: Association, context: AcceptedContext, sop_instance_uid: str,
          modifications: Dataset) -> NormalizedResult:
    """N-SET (PS3.7 10.1.3): replace the attributes ``modifications`` holds."""
    message_id = association.next_message_id()
    command = n_set_rq(message_id, context.abstract_syntax, sop_instance_uid)
    return _request(association, context, command, message_id, modifications, sop_instance_uid, "N-SET")


def n_get(association: Association, context: AcceptedContext, sop_instance_uid: str,
          attributes: tuple[int, ...] | list[int] = ()) -> NormalizedResult:
    """N-GET (PS3.7 10.1.2) the ``attributes`` (tags; none: all) of an instance."""
    message_id = association.next_message_id()
    command = n_get_rq(message_id, context.abstract_syntax, sop_instance_uid, attributes)
    return _request(association, context, command, message_id, None, sop_instance_uid, "N-GET")


def n_action(association: Association, context: AcceptedContext, sop_instance_uid: str,
             action_type_id: int, information: Dataset | None) -> NormalizedResult:
    """N-ACTION (PS3.7 10.1.4) ``action_type_id`` on an instance, with its action
    information."""
    message_id = association.next_message_id()
    command = n_action_rq(message_id, context.abstract_syntax, sop_instance_uid, action_type_id,
                          has_dataset=information is not None)
    return _request(association, context, command, message_id, information, sop_instance_uid, "N-ACTION")


def n_event_report(association: Association, context: AcceptedContext, sop_instance_uid: str,
                   event_type_id: int, information: Dataset | None) -> NormalizedResult:
    """N-EVENT-REPORT (PS3.7 10.1.1) the event ``event_type_id`` of an instance."""
    message_id = association.next_message_id()
    command = n_event_report_rq(message_id, context.abstract_syntax, sop_instance_uid, event_type_id,
                                has_dataset=information is not None)
    return _request(association, context, command, message_id, information, sop_instance_uid, "N-EVENT-REPORT")


def n_delete(association: Association, context: AcceptedContext, sop_instance_uid: str) -> NormalizedResult:
    """N-DELETE (PS3.7 10.1.6) an instance."""
    message_id = association.next_message_id()
    command = n_delete_rq(message_id, context.abstract_syntax, sop_instance_uid)
    return _request(association, context, command, message_id, None, sop_instance_uid, "N-DELETE")


def _request(association: Association, context: AcceptedContext, command: bytes, message_id: int,
             dataset: Dataset | None, sop_instance_uid: str, operation: str) -> NormalizedResult:
    """Send one normalized request and read its response.

    Raises:
        DimseError: the response has no status, or a dataset that cannot be read.
        AssociationAborted, NetworkTimeout: the association was lost or the peer is silent.
    """
    syntax = context.transfer_syntax
    data = encode_identifier(dataset, syntax) if dataset is not None else None
    response = next(association.request(context.context_id, command, data, message_id=message_id))
    status = response.us(STATUS)
    if status is None:
        raise DimseError(f"{association.label} answered {operation} without a status")
    answer = None
    if response.data is not None:
        try:
            answer = decode_identifier(response.data, syntax)
        except ValueError as exc:
            raise DimseError(f"{association.label} answered with a dataset that cannot be read: {exc}") from None
    type_id = response.us(ACTION_TYPE_ID)
    return NormalizedResult(
        status=status, sop_instance_uid=response.text(AFFECTED_SOP_INSTANCE_UID) or sop_instance_uid,
        dataset=answer, comment=response.text(ERROR_COMMENT), offending=tuple(response.tags(OFFENDING_ELEMENT)),
        error_id=response.us(ERROR_ID), type_id=type_id if type_id is not None else response.us(EVENT_TYPE_ID),
        attributes=tuple(response.tags(ATTRIBUTE_IDENTIFIER_LIST)))



class EventReports:
    """The N-EVENT-REPORT requests a requestor receives on its own association (a
    :class:`~pacskit.net.exchange.RequestHandler` for ``N_EVENT_REPORT_RQ``, PS3.7
    10.1.1): each is decoded, handed to ``on_report`` — which returns the response's
    status, or raises :class:`~pacskit.net.acceptor.DimseStatus` — and answered.

    Attributes:
        received: the reports served so far, in order.
    """

    def __init__(self, on_report: Callable[[NormalizedRequest], int]) -> None:
        self.on_report = on_report
        self.received: list[NormalizedRequest] = []

    def open(self, association: Association, context: AcceptedContext, message: Message) -> None:
        return None

    def handle(self, association: Association, context: AcceptedContext, message: Message) -> None:
        sop_class = message.text(AFFECTED_SOP_CLASS_UID)
        instance = message.text(AFFECTED_SOP_INSTANCE_UID)
        event_type = message.us(EVENT_TYPE_ID)
        comment = ""
        try:
            if sop_class != context.abstract_syntax:
                raise DimseStatus(SOP_CLASS_NOT_SUPPORTED, "the SOP class is not the context's")
            try:
                dataset = decode_identifier(message.data, context.transfer_syntax) if message.data is not None else None
            except (ValueError, InflationLimitExceeded) as exc:
                raise DimseStatus(PROCESSING_FAILURE, f"unreadable event information: {exc}") from None
            request = NormalizedRequest(N_EVENT_REPORT_RQ, sop_class, instance, dataset, event_type)
            self.received.append(request)
            status = self.on_report(request)
        except DimseStatus as exc:
            status, comment = exc.status, exc.comment
        association.send(message.context_id, n_rsp(N_EVENT_REPORT_RSP, message.us(MESSAGE_ID) or 0, sop_class,
                                                   instance, status, type_id=event_type, comment=comment))
