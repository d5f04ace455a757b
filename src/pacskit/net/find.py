"""Query/Retrieve FIND, SCU side (PS3.4 C.4.1)."""

from __future__ import annotations

from collections.abc import Iterator

from pydicom import Dataset
from pynetdicom import build_context
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
_MESSAGE_ID = 1


def c_find(
    settings: Settings,
    node: Node,
    identifier: Dataset,
    model: str,
    limit: int | None = None,
) -> Iterator[Dataset]:
    """Send one C-FIND and yield the identifier of every pending response.

    After ``limit`` matches a C-CANCEL is sent (PS3.7 9.3.2.3) and the remaining
    responses are drained without being yielded.

    Raises:
        NetworkError: the association failed.
        ServiceNotSupported: the peer does not offer this information model.
        DimseFailure, NetworkTimeout, AssociationAborted: the C-FIND failed.
    """
    sop_class = FIND_SOP_CLASSES[model]
    with associate(settings, node, [build_context(sop_class)]) as assoc:
        if not assoc.accepted_contexts:
            raise ServiceNotSupported(
                f"{node.label} does not offer C-FIND in the {model}-root information model"
            )
        context_id = assoc.accepted_contexts[0].context_id
        count = 0
        cancelled = False
        for response, match in assoc.send_c_find(identifier, sop_class, msg_id=_MESSAGE_ID):
            status = check_response(assoc, response, "C-FIND", node)
            if outcome_of(status) is not Outcome.PENDING:
                break
            if cancelled or match is None:
                continue
            yield match
            count += 1
            if limit is not None and count >= limit:
                assoc.send_c_cancel(_MESSAGE_ID, context_id)
                cancelled = True
