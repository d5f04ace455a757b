"""Query/Retrieve FIND, SCU side (PS3.4 C.4.1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydicom import Dataset
from pynetdicom import build_context
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from pacskit.errors import ServiceNotSupported
from pacskit.net.association import associate
from pacskit.net.status import Outcome, check_response, outcome_of
from pacskit.nodes import Node
from pacskit.settings import Settings

FIND_SOP_CLASSES = {
    "patient": PatientRootQueryRetrieveInformationModelFind,
    "study": StudyRootQueryRetrieveInformationModelFind,
}


class FindSession:
    """One association over which any number of C-FIND requests are sent in turn."""

    def __init__(self, assoc: Association, node: Node, model: str) -> None:
        self.assoc = assoc
        self.node = node
        self.sop_class = FIND_SOP_CLASSES[model]
        self.context_id = assoc.accepted_contexts[0].context_id
        self._message_id = 0

    def find(self, identifier: Dataset, limit: int | None = None) -> Iterator[Dataset]:
        """Send one C-FIND and yield the identifier of every pending response.

        After ``limit`` matches a C-CANCEL is sent (PS3.7 9.3.2.3) and the remaining
        responses are drained without being yielded. Consume the generator to the end
        before sending the next request.

        Raises:
            DimseFailure, NetworkTimeout, AssociationAborted: the C-FIND failed.
        """
        self._message_id += 1
        message_id = self._message_id
        count = 0
        cancelled = False
        for response, match in self.assoc.send_c_find(identifier, self.sop_class, msg_id=message_id):
            status = check_response(self.assoc, response, "C-FIND", self.node)
            if outcome_of(status) is not Outcome.PENDING:
                break
            if cancelled or match is None:
                continue
            yield match
            count += 1
            if limit is not None and count >= limit:
                self.assoc.send_c_cancel(message_id, self.context_id)
                cancelled = True


@contextmanager
def find_session(settings: Settings, node: Node, model: str) -> Iterator[FindSession]:
    """An association for C-FIND in the ``patient`` or ``study`` root model.

    Raises:
        NetworkError: the association failed.
        ServiceNotSupported: the peer does not offer this information model.
    """
    with associate(settings, node, [build_context(FIND_SOP_CLASSES[model])]) as assoc:
        if not assoc.accepted_contexts:
            raise ServiceNotSupported(
                f"{node.label} does not offer C-FIND in the {model}-root information model"
            )
        yield FindSession(assoc, node, model)
