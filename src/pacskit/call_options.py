"""The keyword arguments the client's calls share, typed (PEP 692 ``Unpack``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, TypedDict

if TYPE_CHECKING:
    from pacskit.cancellation import Cancellation
    from pacskit.retrieve import ProgressCallback

RetrieveMethod = Literal["get", "move", "auto"]


class RetryOptions(TypedDict, total=False):
    """Retries of one call (:mod:`pacskit.retry`); the settings' ``retries`` and
    ``retry_backoff`` when not given.

    Attributes:
        retries: attempts after the first, for a transient failure.
        retry_backoff: seconds before the first retry, doubled for each next one.
    """

    retries: int | None
    retry_backoff: float | None


class DeidentifyOptions(TypedDict, total=False):
    """De-identification of what a call brings (PS3.15 Annex E, :mod:`pacskit.deid`).

    Attributes:
        deidentify: de-identify (a node configured with ``deidentify = true`` always is).
        deid_options: the profile's options, added to ``deidentify.options``; they imply
            ``deidentify``.
    """

    deidentify: bool
    deid_options: Iterable[str]


class FindOptions(RetryOptions, DeidentifyOptions, total=False):
    """:class:`RetryOptions` and :class:`DeidentifyOptions` of a search."""


class RetrieveOptions(RetryOptions, DeidentifyOptions, total=False):
    """How a retrieve is made and where it goes (see :meth:`pacskit.client.Client.get`).

    Attributes:
        layout: the path template of the files, under the output folder.
        overwrite: replace files already present.
        method: ``get``, ``move`` (to ourselves) or ``auto``.
        progress: called with a :class:`~pacskit.models.RetrieveProgress` as instances
            arrive.
        wado_uri: from a DICOMweb node, retrieve by WADO-URI instead of WADO-RS.
        cancellation: once cancelled, nothing more is written (see
            :class:`~pacskit.cancellation.Cancellation`).
        forward_to: the forward storage mode: each instance sent on to this node (a
            name, ``dicom://`` address or DICOMweb URL) as it arrives, on one kept
            association, instead of being written or kept.
    """

    layout: str
    forward_to: str | None
    overwrite: bool
    method: RetrieveMethod
    progress: ProgressCallback | None
    wado_uri: bool
    cancellation: Cancellation | None


class Timed(TypedDict, total=False):
    """Attributes:
        timeout: seconds the whole call may take, retries included; past it the awaiting
            task gets :class:`TimeoutError` (:func:`asyncio.wait_for`).
    """

    timeout: float | None


class AsyncRetryOptions(RetryOptions, Timed, total=False):
    """:class:`RetryOptions` and a ``timeout``."""


class AsyncFindOptions(FindOptions, Timed, total=False):
    """:class:`FindOptions` and a ``timeout``."""


class AsyncRetrieveOptions(RetrieveOptions, Timed, total=False):
    """:class:`RetrieveOptions` and a ``timeout``."""


class WorklistFilters(TypedDict, total=False):
    """The filters of :meth:`WorklistQuery.build <pacskit.worklist.query.WorklistQuery.build>`."""

    station_aet: str | None
    modality: str | None
    date: str | None
    patient_id: str | None
    accession: str | None
    keys: Iterable[str]
    limit: int | None
