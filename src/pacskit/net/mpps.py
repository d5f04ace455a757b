"""The MPPS SCU (PS3.4 F.7, F.8): N-CREATE and N-SET a Modality Performed Procedure
Step, N-GET its attributes, one association per call."""

from __future__ import annotations

from pydicom import Dataset
from pynetdicom import build_context

from pacskit.errors import DimseFailure, ServiceNotSupported
from pacskit.mpps.model import MPPS_RETRIEVE_SOP_CLASS, MPPS_SOP_CLASS
from pacskit.net.association import associate
from pacskit.net.normalized import NormalizedResult, n_create, n_get, n_set
from pacskit.net.status import Outcome, describe, outcome_of
from pacskit.nodes import Node
from pacskit.settings import Settings

_NAMES = {MPPS_SOP_CLASS: "Modality Performed Procedure Step", MPPS_RETRIEVE_SOP_CLASS: "MPPS Retrieve"}


def create_step(settings: Settings, node: Node, dataset: Dataset, sop_instance_uid: str | None = None) -> str:
    """N-CREATE a step with ``dataset`` (PS3.4 F.7.2.1); the SOP Instance UID the SCP
    confirms or assigns.

    Raises:
        ServiceNotSupported: the peer does not offer the MPPS SOP Class.
        DimseFailure: a failure status (its Offending Element and Error ID in the message).
        NetworkError: the association failed.
    """
    result = _call(settings, node, MPPS_SOP_CLASS, "N-CREATE", lambda a, c: n_create(a, c, dataset, sop_instance_uid))
    return result.sop_instance_uid


def set_step(settings: Settings, node: Node, sop_instance_uid: str, modifications: Dataset) -> NormalizedResult:
    """N-SET ``modifications`` on the step ``sop_instance_uid`` (PS3.4 F.7.2.2).

    Raises:
        ServiceNotSupported, DimseFailure, NetworkError: as :func:`create_step`.
    """
    return _call(settings, node, MPPS_SOP_CLASS, "N-SET", lambda a, c: n_set(a, c, sop_instance_uid, modifications))


def get_step(settings: Settings, node: Node, sop_instance_uid: str, tags: tuple[int, ...] = ()) -> Dataset:
    """N-GET the attributes ``tags`` (none: all) of a step, on the MPPS Retrieve SOP
    Class (PS3.4 F.8).

    Raises:
        ServiceNotSupported, DimseFailure, NetworkError: as :func:`create_step`.
    """
    result = _call(settings, node, MPPS_RETRIEVE_SOP_CLASS, "N-GET", lambda a, c: n_get(a, c, sop_instance_uid, tags))
    return result.dataset if result.dataset is not None else Dataset()


def _call(settings: Settings, node: Node, sop_class: str, what: str, operation) -> NormalizedResult:  # type: ignore[no-untyped-def]
    with associate(settings, node, [build_context(sop_class)]) as association:
        context = next(iter(association.contexts.values()), None)
        if context is None:
            raise ServiceNotSupported(f"{node.label} does not offer the {_NAMES[sop_class]} SOP Class")
        result: NormalizedResult = operation(association, context)
        if outcome_of(result.status) is Outcome.FAILURE:
            raise DimseFailure(failure_text(what, result, node), status=result.status, comment=result.comment)
        return result


def failure_text(what: str, result: NormalizedResult, node: Node) -> str:
    """``N-SET failed at NODE: 0x0110 (Processing Failure): <comment> (error ID 0xA710;
    offending (0040,0252))``: what a failure status said, on one line."""
    text = f"{what} failed at {node.label}: {describe(result.status)}"
    comment = " ".join(result.comment.split())
    if comment:
        text += f": {comment}"
    details = []
    if result.error_id is not None:
        details.append(f"error ID 0x{result.error_id:04X}")
    if result.offending:
        details.append("offending " + " ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in result.offending))
    return text + (f" ({'; '.join(details)})" if details else "")
