"""Query/Retrieve GET and MOVE, SCU side (PS3.4 C.4.2, C.4.3).

A :class:`RetrieveSession` holds one association and sends any number of C-GET or C-MOVE
requests over it. For C-GET the same association carries the C-STORE sub-operations back
to us (SCP/SCU role selection, PS3.7 D.3.3.4); each is handed, still encoded, to the
``on_instance`` callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydicom import Dataset
from pynetdicom import build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from pacskit.errors import NoStorageRole, PacskitError, ServiceNotSupported
from pacskit.net.association import associate
from pacskit.net.contexts import retrieve_storage_contexts
from pacskit.net.status import Outcome, check_response, outcome_of
from pacskit.nodes import Node
from pacskit.settings import Settings

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

    def update(self, response: Dataset) -> None:
        if "NumberOfRemainingSuboperations" in response:
            self.remaining = int(response.NumberOfRemainingSuboperations)
        for keyword, name in (("NumberOfCompletedSuboperations", "completed"),
                              ("NumberOfFailedSuboperations", "failed"),
                              ("NumberOfWarningSuboperations", "warning")):
            if keyword in response and response[keyword].value is not None:
                setattr(self, name, int(response[keyword].value))


InstanceHandler = Callable[[bytes], None]
ProgressHandler = Callable[[SubOperations], None]


class InstanceRejected(PacskitError):
    """Raised by an ``on_instance`` callback to refuse one sub-operation's instance.

    Attributes:
        status: the C-STORE failure status to answer (0xA700 out of resources by default).
    """

    def __init__(self, message: str, status: int = STATUS_OUT_OF_RESOURCES) -> None:
        super().__init__(message)
        self.status = status


class RetrieveSession:
    """One association over which C-GET or C-MOVE requests are sent."""

    def __init__(self, assoc: Association, node: Node, model: str, method: str) -> None:
        self.assoc = assoc
        self.node = node
        self.model = model
        self.method = method
        self._message_id = 0

    def c_get(self, identifier: Dataset, progress: ProgressHandler | None = None) -> SubOperations:
        """Send one C-GET and wait for its final response.

        Raises:
            DimseFailure, NetworkTimeout, AssociationAborted: the C-GET failed.
        """
        self._message_id += 1
        responses = self.assoc.send_c_get(identifier, GET_SOP_CLASSES[self.model], msg_id=self._message_id)
        return self._follow(responses, "C-GET", progress)

    def c_move(self, identifier: Dataset, destination: str,
               progress: ProgressHandler | None = None) -> SubOperations:
        """Send one C-MOVE to ``destination`` (an AE title) and wait for its final response.

        Raises:
            MoveDestinationUnknown: the peer does not know ``destination`` (0xA801).
            DimseFailure, NetworkTimeout, AssociationAborted: the C-MOVE failed.
        """
        self._message_id += 1
        responses = self.assoc.send_c_move(
            identifier, destination, MOVE_SOP_CLASSES[self.model], msg_id=self._message_id
        )
        return self._follow(responses, "C-MOVE", progress)

    def _follow(self, responses: Iterator[tuple[Dataset, Dataset | None]], service: str,
                progress: ProgressHandler | None) -> SubOperations:
        counts = SubOperations()
        for response, identifier in responses:
            if response is not None:
                counts.update(response)
            if _sub_operations_failed(response, counts):
                counts.status = int(response.Status)
                counts.failed_instances = _failed_instances(identifier)
                break
            status = check_response(self.assoc, response, service, self.node)
            counts.status = status
            if progress is not None:
                progress(counts)
            if outcome_of(status) is not Outcome.PENDING:
                counts.failed_instances = _failed_instances(identifier)
                break
        return counts


def _sub_operations_failed(response: Dataset | None, counts: SubOperations) -> bool:
    """A final failure status that reports sub-operations (PS3.4 C.4.2.1.5): the request
    was carried out and some or all of its sub-operations failed."""
    if response is None or "Status" not in response:
        return False
    status = int(response.Status)
    reported = counts.completed + counts.failed + counts.warning
    return outcome_of(status) is Outcome.FAILURE and reported > 0


def _failed_instances(identifier: Dataset | None) -> list[str]:
    if identifier is None or "FailedSOPInstanceUIDList" not in identifier:
        return []
    value = identifier.FailedSOPInstanceUIDList
    values = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    return [str(v) for v in values if v]


@contextmanager
def get_session(settings: Settings, node: Node, model: str,
                on_instance: InstanceHandler) -> Iterator[RetrieveSession]:
    """An association for C-GET, with pacskit as Storage SCP for the sub-operations.

    Raises:
        NetworkError: the association failed.
        ServiceNotSupported: the peer does not offer C-GET in this information model.
        NoStorageRole: the peer accepted C-GET but refused us the Storage SCP role.
    """
    get_class = GET_SOP_CLASSES[model]
    storage = retrieve_storage_contexts(reserved=1)
    roles = [build_role(uid, scp_role=True)
             for uid in dict.fromkeys(cx.abstract_syntax for cx in storage)]
    handlers = [(evt.EVT_C_STORE, store_handler(on_instance))]
    with associate(settings, node, [build_context(get_class), *storage],
                   ext_neg=roles, evt_handlers=handlers) as assoc:
        accepted = {cx.abstract_syntax for cx in assoc.accepted_contexts}
        if get_class not in accepted:
            raise ServiceNotSupported(f"{node.label} does not offer C-GET ({model}-root)")
        if not any(cx.as_scp for cx in assoc.accepted_contexts if cx.abstract_syntax != get_class):
            raise NoStorageRole(
                f"{node.label} accepted C-GET but not pacskit as Storage SCP (role selection)"
            )
        yield RetrieveSession(assoc, node, model, "get")


@contextmanager
def move_session(settings: Settings, node: Node, model: str) -> Iterator[RetrieveSession]:
    """An association for C-MOVE requests.

    Raises:
        NetworkError: the association failed.
        ServiceNotSupported: the peer does not offer C-MOVE in this information model.
    """
    move_class = MOVE_SOP_CLASSES[model]
    with associate(settings, node, [build_context(move_class)]) as assoc:
        if not assoc.accepted_contexts:
            raise ServiceNotSupported(f"{node.label} does not offer C-MOVE ({model}-root)")
        yield RetrieveSession(assoc, node, model, "move")


def store_handler(on_instance: InstanceHandler) -> Callable[[evt.Event], int]:
    """An ``EVT_C_STORE`` handler that passes the encoded instance to ``on_instance``.

    Success (0x0000) unless ``on_instance`` raises: :class:`InstanceRejected` gives its
    status, anything else 0xA700 (out of resources).
    """
    def handle(event: evt.Event) -> int:
        try:
            on_instance(event.encoded_dataset(include_meta=True))
        except InstanceRejected as exc:
            return exc.status
        except Exception:  # noqa: BLE001 - a failed write must not kill the association
            return STATUS_OUT_OF_RESOURCES
        return 0x0000

    return handle
