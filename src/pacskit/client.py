"""The synchronous client: every DICOM operation pacskit performs as a library call."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pacskit import retry
from pacskit.call_options import (
    FindOptions,
    RetrieveMethod,
    RetrieveOptions,
    RetryOptions,
    WorklistFilters,
)
from pacskit.cancellation import Cancellation
from pacskit.echo_result import EchoResult
from pacskit.errors import DimseError, InputError, MoveDestinationUnknown, UsageError
from pacskit.layout import DEFAULT_LAYOUT, Layout
from pacskit.net.echo import c_echo
from pacskit.net.status import MOVE_DESTINATION_UNKNOWN
from pacskit.nodes import Node, is_web_address
from pacskit.privacy import PrivacyPolicy
from pacskit.retry import RetryPolicy
from pacskit.settings import Settings

if TYPE_CHECKING:
    from pydicom import Dataset
    from typing_extensions import Unpack

    from pacskit.commitment import CommitmentResult, Reference
    from pacskit.deid import Deidentifier
    from pacskit.level_queries import (
        InstanceQuery,
        LevelQuery,
        PatientQuery,
        SeriesQuery,
        StudyQuery,
    )
    from pacskit.models import (
        AnswerCheck,
        Answers,
        Matches,
        MoveResult,
        RetrieveResult,
        StoreResult,
    )
    from pacskit.query import Query
    from pacskit.results import (
        InstanceResult,
        LevelResult,
        PatientResult,
        SeriesResult,
        StudyResult,
    )
    from pacskit.retrieve import InstanceSink, MoveProgressCallback, ProgressCallback
    from pacskit.send import StoreProgressCallback
    from pacskit.storage import FolderSink
    from pacskit.transfer import CopyResult
    from pacskit.web.client import DicomWebClient, WebNode
    from pacskit.worklist.query import WorklistQuery


class _OnFirstUse(ModuleType):
    """A service module imported when one of its names is first used, so that a call
    loads only its own service: an echo neither the retrieve, find, send nor storage
    modules (docs/start-up.md)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self.__name__)
        return getattr(self._module, attribute)


if TYPE_CHECKING:
    from pacskit import commitment as _commitment
    from pacskit import finder as _finder
    from pacskit import level_queries as _level_queries
    from pacskit import models as _models
    from pacskit import query as _query
    from pacskit import results as _results
    from pacskit import retrieve as _retrieve
    from pacskit import send as _send
    from pacskit import sources as _sources
    from pacskit import storage as _storage
    from pacskit.net import find as _find
    from pacskit.worklist import query as _worklist
else:
    _commitment = _OnFirstUse("pacskit.commitment")
    _finder = _OnFirstUse("pacskit.finder")
    _level_queries = _OnFirstUse("pacskit.level_queries")
    _models = _OnFirstUse("pacskit.models")
    _query = _OnFirstUse("pacskit.query")
    _results = _OnFirstUse("pacskit.results")
    _retrieve = _OnFirstUse("pacskit.retrieve")
    _send = _OnFirstUse("pacskit.send")
    _sources = _OnFirstUse("pacskit.sources")
    _storage = _OnFirstUse("pacskit.storage")
    _find = _OnFirstUse("pacskit.net.find")
    _worklist = _OnFirstUse("pacskit.worklist.query")

R = TypeVar("R", bound="LevelResult")
T = TypeVar("T")


class Client:
    """A DICOM client configured by :class:`~pacskit.settings.Settings`.

    >>> client = Client()                      # pacskit.toml, PACSKIT_* environment
    >>> client.echo("dicom://ORTHANC@localhost:4242")

    Args:
        settings: the settings to use; by default they are loaded from the config file
            and the environment.
        config_file: a ``pacskit.toml`` to load instead of the default one.
    """

    def __init__(self, settings: Settings | None = None, *, config_file: Path | str | None = None):
        self.settings = settings if settings is not None else Settings.load(config_file)
        self.privacy = PrivacyPolicy(allow_patient_names=self.settings.allow_patient_names)

    def node(self, node: Node | str) -> Node:
        """Resolve a node name or ``dicom://AET@host:port`` address.

        Raises:
            UnknownNode, InvalidAddress: the node cannot be resolved.
        """
        return node if isinstance(node, Node) else self.settings.resolve_node(node)

    def web_node(self, node: Node | str) -> WebNode | None:
        """The DICOMweb service ``node`` names, if it is reached over DICOMweb: an
        ``http(s)://`` URL, or a configured node whose transport is DICOMweb.

        Raises:
            InvalidAddress: a malformed URL.
        """
        if not isinstance(node, str):
            return None
        if is_web_address(node):
            from pacskit.web.client import WebNode  # httpx only for the nodes that need it

            return WebNode.parse(node)
        entry = self.settings.nodes.get(node)
        if entry is None or not entry.uses_dicomweb or not entry.dicomweb_url:
            return None
        from pacskit.web.client import WebNode

        return WebNode.parse(entry.dicomweb_url, name=node, username=entry.username,
                             password=entry.password, token=entry.token)

    def _web_client(self, web: WebNode, connections: int = 1) -> DicomWebClient:
        from pacskit.web.client import DicomWebClient

        return DicomWebClient(web, self.privacy, **self.web_options(web, connections))

    def web_options(self, web: WebNode, connections: int = 1) -> dict[str, Any]:
        """The keyword arguments of a DICOMweb client of ``web`` (blocking or async) as the
        settings say: the timeouts, the connections, the search bound and the TLS context
        of an ``https`` URL (CA bundle, client certificate, checks: :mod:`pacskit.net.tls`)."""
        from pacskit.net.tls import web_client_context

        verify = web_client_context(self.settings.tls) if web.url.startswith("https:") else True
        return {"timeout": self.settings.network_timeout, "connect_timeout": self.settings.connect_timeout,
                "connections": max(1, connections), "max_search_answer": self.settings.max_search_answer,
                "verify": verify}

    def wado_receiver(self, sink: InstanceSink | None, progress: ProgressCallback | None,
                      cancellation: Cancellation | None, *, wado_uri: bool,
                      transform: Deidentifier | None = None) -> _retrieve.Receiver:
        """What takes the instances of a WADO-RS (or WADO-URI) retrieve, its sink prepared."""
        if sink is not None:
            sink.prepare()
        result = _models.RetrieveResult(method="wado-uri" if wado_uri else "wado-rs")
        return _retrieve.Receiver(result, sink, self.privacy, progress, None, cancellation, transform)

    def source_search(self, node: Node | str, query: Query) -> Answers:
        """The matches of ``query`` as ``node`` holds them — checked against the query, names
        withheld, never de-identified (a node configured to de-identify included): what a
        retrieve or a copy plans its requests from (:mod:`pacskit.transfer`).

        Raises:
            QueryError, NetworkError, DimseError: the search failed.
        """
        query.to_identifier(self.privacy)
        check = _models.AnswerCheck(level=query.level)
        return _models.Answers(self._retried_search(node, query, check, self.policy()), check)

    def policy(self, retries: int | None = None, retry_backoff: float | None = None) -> RetryPolicy:
        """The retries of a call: those given, else the settings' (:mod:`pacskit.retry`)."""
        return RetryPolicy(self.settings.retries if retries is None else retries,
                           self.settings.retry_backoff if retry_backoff is None else retry_backoff)

    def _retried(self, operation: Callable[[], T], what: str, options: RetryOptions) -> T:
        return retry.call(operation, self.policy(options.get("retries"), options.get("retry_backoff")), what)

    def echo(self, node: Node | str, **options: Unpack[RetryOptions]) -> EchoResult:
        """Verify that ``node`` answers a C-ECHO (PS3.4 Annex A).

        Raises:
            UnknownNode, InvalidAddress: ``node`` cannot be resolved.
            NetworkError: the peer cannot be reached or rejects the association.
            DimseError: the C-ECHO failed.
        """
        target = self.node(node)
        status, associate_s, rtt_s = self._retried(lambda: c_echo(self.settings, target), "C-ECHO", options)
        return EchoResult(node=target, status=status, associate_ms=associate_s * 1e3, rtt_ms=rtt_s * 1e3)

    def deidentifier_for(self, node: Node | str, deidentify: bool, options: Iterable[str]) -> Deidentifier | None:
        from pacskit.deid.configured import configured_deidentifier

        return configured_deidentifier(self.settings, node, deidentify, options)

    def iter_find(self, node: Node | str, query: Query, **options: Unpack[FindOptions]) -> Answers:
        """C-FIND ``query`` on ``node``, yielding each match as it arrives (PS3.4 C.4.1).
        ``node`` may also be ``"archive"`` (the local archive's index) or a folder of
        DICOM files, searched with the same rules (:mod:`pacskit.sources`).

        Patient names are neither requested nor returned unless the settings opt in.
        After ``query.limit`` matches the rest is cancelled (C-CANCEL). Keys that a
        hierarchical SCP would ignore are honoured by querying in steps
        (:mod:`pacskit.finder`). Every answer of a peer is checked against the query:
        those that fail a key the peer ignored are dropped, those that cannot be checked
        are kept; the result's ``check`` (:class:`~pacskit.models.AnswerCheck`) counts
        both once the iteration ends. A transient failure before the first answer is
        tried again as ``retries`` allows (:mod:`pacskit.retry`); one after it is raised.
        With ``deidentify`` (or ``deid_options``, or a node configured with
        ``deidentify = true``) each match is de-identified as a retrieved instance is
        (PS3.15 Annex E, :mod:`pacskit.deid`): its UIDs are the ones :meth:`get` writes.

        Raises:
            QueryError: the query is invalid for its level (or asks for names).
            InvalidAddress: a malformed DICOMweb URL.
            NetworkError, DimseError: the C-FIND failed.
            DeidentificationSecretMissing: de-identification without a secret.
        """
        query, check, policy, deidentifier = self.find_plan(node, query, options)
        answers = _models.Answers(self._retried_search(node, query, check, policy), check)
        return answers if deidentifier is None else _deidentified(answers, deidentifier)

    def find_plan(self, node: Node | str, query: Query,
                  options: FindOptions) -> tuple[Query, AnswerCheck, RetryPolicy, Deidentifier | None]:
        """What a find of ``query`` runs, whichever driver: the query as sent (checked,
        with PatientID when de-identified dates need it), the check its answers fill, the
        retries and the de-identifier of its matches.

        Raises:
            QueryError: the query is invalid for its level (or asks for names).
            DeidentificationSecretMissing: de-identification without a secret.
        """
        query.to_identifier(self.privacy)
        deidentifier = self.deidentifier_for(node, options.get("deidentify", False), options.get("deid_options", ()))
        if deidentifier is not None:
            query = _with_patient_id(query, deidentifier)
        check = _models.AnswerCheck(level=query.level)
        return query, check, self.policy(options.get("retries"), options.get("retry_backoff")), deidentifier

    def is_dimse(self, node: Node | str) -> bool:
        """Whether ``node`` is reached by DIMSE (not DICOMweb, the archive or a folder)."""
        return self.web_node(node) is None and not (isinstance(node, str) and _sources.is_local_source(node))

    def _retried_search(self, node: Node | str, query: Query, check: AnswerCheck,
                        policy: RetryPolicy) -> Iterator[Dataset]:
        delays = policy.delays()
        while True:
            matches = self._search(node, query, check)
            try:
                first = next(matches)
            except StopIteration:
                return
            except Exception as exc:
                delay = retry.next_delay(exc, delays, "C-FIND") if check.answers == 0 else None
                if delay is None:
                    raise
                time.sleep(delay)
                continue
            try:
                yield first
                yield from matches
            finally:
                matches.close()
            return

    def _search(self, node: Node | str, query: Query, check: AnswerCheck) -> Generator[Dataset]:
        web = self.web_node(node)
        if web is not None:
            return self._web_search(web, query, check)
        if isinstance(node, str) and _sources.is_local_source(node):
            return self._local_search(node, query, check)
        return self._dimse_search(self.node(node), query, check)

    def _web_search(self, web: WebNode, query: Query, check: AnswerCheck) -> Generator[Dataset]:
        with self._web_client(web) as client:
            yield from client.checked_search(query, check)

    def _local_search(self, source: str, query: Query, check: AnswerCheck) -> Generator[Dataset]:
        for match in _sources.find_local(self.settings, source, query, query.return_keywords(self.privacy)):
            check.answers += 1
            yield self.privacy.scrub_response(match)

    def _dimse_search(self, node: Node, query: Query, check: AnswerCheck) -> Generator[Dataset]:
        with _find.find_session(self.settings, node, query.model.value) as session:
            for match in _finder.checked_matches(session, query, self.privacy, check):
                yield self.privacy.scrub_response(match)

    def find(self, node: Node | str, query: Query, **options: Unpack[FindOptions]) -> Matches:
        """All the matches of :meth:`iter_find`, as a list with its ``check``."""
        return _models.Matches(self.iter_find(node, query, **options))

    def iter_results(self, node: Node | str, query: LevelQuery,
                     **options: Unpack[RetryOptions]) -> Iterator[LevelResult]:
        """The matches of a typed query as typed results (:mod:`pacskit.results`), as
        they arrive; see :meth:`iter_find`."""
        result = query.result
        answers = self.iter_find(node, query.to_query(), **options)
        try:
            for match in answers:
                yield result.from_dataset(match, self.privacy)
        finally:
            answers.close()

    def _typed(self, kind: type[R], node: Node | str, query: LevelQuery, options: RetryOptions) -> list[R]:
        return cast(list[R], list(self.iter_results(node, query, **options)))

    def find_patients(self, node: Node | str, query: PatientQuery | None = None,
                      **options: Unpack[RetryOptions]) -> list[PatientResult]:
        """C-FIND at the PATIENT level, patient root (PS3.4 C.6.1.1.2); every patient
        without ``query``. See :meth:`iter_find` for ``node`` and what is checked."""
        return self._typed(_results.PatientResult, node, query or _level_queries.PatientQuery(), options)

    def find_studies(self, node: Node | str, query: StudyQuery | None = None,
                     **options: Unpack[RetryOptions]) -> list[StudyResult]:
        """C-FIND at the STUDY level, study root (PS3.4 C.6.2.1.2).

        >>> client.find_studies("pacs", StudyQuery(patient_id="12345", modality="CT"))
        """
        return self._typed(_results.StudyResult, node, query or _level_queries.StudyQuery(), options)

    def find_series(self, node: Node | str, query: SeriesQuery | None = None,
                    **options: Unpack[RetryOptions]) -> list[SeriesResult]:
        """C-FIND at the SERIES level, study root (PS3.4 C.6.2.1.3); without a study
        UID the study level is asked first (:mod:`pacskit.finder`)."""
        return self._typed(_results.SeriesResult, node, query or _level_queries.SeriesQuery(), options)

    def find_instances(self, node: Node | str, query: InstanceQuery | None = None,
                       **options: Unpack[RetryOptions]) -> list[InstanceResult]:
        """C-FIND at the IMAGE level, study root (PS3.4 C.6.2.1.4)."""
        return self._typed(_results.InstanceResult, node, query or _level_queries.InstanceQuery(), options)

    def iter_worklist(self, node: Node | str, query: WorklistQuery | None = None,
                      **filters: Unpack[WorklistFilters]) -> Iterator[Dataset]:
        """C-FIND on ``node``'s Modality Worklist (PS3.4 K.4.1.2), yielding each item as it
        arrives: ``query``, or one built from ``filters`` (the keyword arguments of
        :meth:`WorklistQuery.build <pacskit.worklist.query.WorklistQuery.build>`:
        ``station_aet``, ``modality``, ``date``, ``patient_id``, ``accession``, ``keys``,
        ``limit``). Patient names are neither requested nor returned unless the settings
        opt in.

        Raises:
            QueryError: an invalid key or value (or a name asked for).
            ServiceNotSupported: the peer does not offer the worklist.
            NetworkError, DimseError: the C-FIND failed.
        """
        identifier, limit = _worklist.worklist_request(query, filters, self.privacy)
        with _find.find_session(self.settings, self.node(node), "worklist") as session:
            for item in session.find(identifier, limit):
                yield self.privacy.scrub_response(item)

    def worklist(self, node: Node | str, query: WorklistQuery | None = None,
                 **filters: Unpack[WorklistFilters]) -> list[Dataset]:
        """Every item of :meth:`iter_worklist`, as the SCP sent them.

        >>> client.worklist("ris", modality="CT", date="today")
        """
        return list(self.iter_worklist(node, query, **filters))

    def get(
        self,
        node: Node | str,
        query: Query | LevelQuery,
        output: Path | str | None = None,
        *,
        layout: str = DEFAULT_LAYOUT,
        overwrite: bool = False,
        method: RetrieveMethod = "get",
        progress: ProgressCallback | None = None,
        wado_uri: bool = False,
        retries: int | None = None,
        retry_backoff: float | None = None,
        cancellation: Cancellation | None = None,
        deidentify: bool = False,
        deid_options: Iterable[str] = (),
        forward_to: str | None = None,
    ) -> RetrieveResult:
        """Retrieve what ``query`` matches into ``output`` (a folder) or, without
        ``output``, into memory (``RetrieveResult.instances``) or, with ``forward_to``
        (the forward storage mode), to another node: each instance is sent on by C-STORE
        (or STOW-RS) as it arrives, on one association kept for the whole retrieve
        (:class:`~pacskit.sinks.DimseSink`); an instance the node refuses is in
        ``local_failures`` and fails at the source, the others go on.

        ``method`` is ``get`` (C-GET, pacskit is the Storage SCP on the same association),
        ``move`` (C-MOVE to pacskit's own AE title, received by a Storage SCP on the
        configured port) or ``auto`` (C-GET, falling back to C-MOVE when the peer refuses
        C-GET). A query that is not made of unique keys is first resolved by C-FIND.
        From a DICOMweb node the retrieve is by WADO-RS, or instance by instance by
        WADO-URI with ``wado_uri``; from ``"archive"`` or a folder, the files are read
        where they are.
        Files are written atomically under ``layout``; those already present are kept
        unless ``overwrite``. A layout without ``{SOPInstanceUID}`` may give instances the
        same path: each then gets a file of its own (``0001.dcm``, ``0001-2.dcm``...).
        Patient names are blanked unless the settings opt in, and a layout with a
        patient-name field is refused before anything is retrieved. A transient failure
        is tried again, as a whole, as ``retries`` allows (:mod:`pacskit.retry`); files
        a failed attempt wrote are then kept as present. Once ``cancellation`` is
        cancelled (from another thread), every instance still arriving is refused, none
        is written any more and no further request is sent. With ``deidentify`` (or
        ``deid_options``, or a node configured with ``deidentify = true``) every instance
        is de-identified before it is written or returned (PS3.15 Annex E,
        :mod:`pacskit.deid`).

        Returns the outcome; call ``raise_for_status()`` on it to turn failures into
        exceptions.

        Raises:
            QueryError: an invalid query.
            UsageError: an invalid layout, or one with a withheld patient name.
            OutputError: ``output`` cannot be written.
            NetworkError, DimseError: the retrieve failed (``ServiceNotSupported`` when the
                peer refuses C-GET, ``NoStorageRole``, ``MoveDestinationUnknown``...).
            DeidentificationSecretMissing: de-identification without a secret.
        """
        if method not in ("get", "move", "auto"):
            raise ValueError(f"method must be get, move or auto, not {method!r}")
        general = query.to_query() if isinstance(query, _level_queries.LevelQuery) else query
        deidentifier = self.deidentifier_for(node, deidentify, deid_options)
        if forward_to is not None:
            if output is not None:
                raise UsageError("forward_to and output are two storage modes: give one")
            return self._forwarded(node, general, forward_to, deidentifier, method=method, progress=progress,
                                   cancellation=cancellation, retries=retries, retry_backoff=retry_backoff)
        return self._retrieved(node, general, self.folder_sink(output, layout, overwrite, deidentifier),
                               method=method, wado_uri=wado_uri, progress=progress, cancellation=cancellation,
                               transform=deidentifier, retries=retries, retry_backoff=retry_backoff)

    def _retrieved(self, node: Node | str, query: Query, sink: InstanceSink | None, *, method: RetrieveMethod,
                   wado_uri: bool, progress: ProgressCallback | None, cancellation: Cancellation | None,
                   transform: Deidentifier | None, retries: int | None,
                   retry_backoff: float | None) -> RetrieveResult:
        """What :meth:`get` does once it knows where the instances go: the source opened,
        each match of ``query`` fetched whole at its level (:func:`pacskit.transfer.plan_at_level`)."""
        from pacskit import transfer
        from pacskit.endpoints import open_source

        def attempt() -> RetrieveResult:
            started = time.monotonic()
            source = open_source(self, node, method, wado_uri=wado_uri)
            try:
                plan = transfer.plan_at_level(source, query)
                result = source.fetch(plan, sink, progress, cancellation, transform)
            finally:
                source.close()
            result.check = plan.check
            result.seconds = time.monotonic() - started
            return result

        return self._retried(attempt, "retrieve", {"retries": retries, "retry_backoff": retry_backoff})

    def folder_sink(self, output: Path | str | None, layout: str, overwrite: bool,
                    deidentifier: Deidentifier | None) -> FolderSink | None:
        """Where a retrieve into ``output`` writes (None: memory).

        Raises:
            UsageError: an invalid layout, or one with a withheld patient name.
        """
        if output is None:
            return None
        return _storage.FolderSink(output, Layout(layout), overwrite=overwrite, privacy=self.privacy,
                          deidentifier=deidentifier)

    def _forwarded(self, node: Node | str, query: Query, forward_to: str, deidentifier: Deidentifier | None, *,
                   method: RetrieveMethod, progress: ProgressCallback | None, cancellation: Cancellation | None,
                   retries: int | None, retry_backoff: float | None) -> RetrieveResult:
        from pacskit.endpoints import open_sink, refuse_same

        refuse_same(self, node, forward_to)
        sink = open_sink(self, forward_to, deidentifier=deidentifier)
        try:
            result = self._retrieved(node, query, sink, method=method, wado_uri=False, progress=progress,
                                     cancellation=cancellation, transform=None, retries=retries,
                                     retry_backoff=retry_backoff)
        finally:
            late = sink.close(abort=cancellation is not None and cancellation.cancelled)
        _retrieve.add_late_failures(result, late)
        return result

    def copy(self, source: Node | str | Path, query: Query | LevelQuery, destination: Node | str | Path | None = None,
             *, layout: str = DEFAULT_LAYOUT, overwrite: bool = False, method: RetrieveMethod = "get",
             dry_run: bool = False, progress: ProgressCallback | None = None,
             cancellation: Cancellation | None = None, deidentify: bool = False, deid_options: Iterable[str] = (),
             retries: int | None = None, retry_backoff: float | None = None, wado_uri: bool = False) -> CopyResult:
        """Copy what ``query`` matches at ``source`` to ``destination`` (:mod:`pacskit.transfer`).

        Either may be a node name, a :class:`Node`, a ``dicom://`` address, a DICOMweb URL,
        ``"archive"`` or a folder (as a string or a :class:`~pathlib.Path`); without
        ``destination`` the instances are kept in memory (``CopyResult.instances``).
        Instances the destination already holds (by SOP Instance UID) are not copied
        again, so a copy run again completes one that stopped. With ``dry_run`` nothing
        is copied: ``CopyResult.wanted`` lists what would be. A folder or the archive as
        destination gets patient names withheld unless the settings allow them; a node
        gets the instances as the source sent them (de-identified with ``deidentify``).
        An instance the destination refuses fails alone (``CopyResult.failed``). A
        transient failure is tried again as ``retries`` allows, each attempt copying
        only what is still missing. From a DICOMweb server, ``wado_uri`` fetches instance
        by instance by WADO-URI (``/wado``) instead of WADO-RS.

        Raises:
            UsageError: ``source`` and ``destination`` are the same place, a bad layout, or
                ``wado_uri`` from a source that is not a DICOMweb server.
            InputError: a source folder missing or without DICOM files.
            QueryError, NetworkError, DimseError, OutputError: as the step that fails.
            DeidentificationSecretMissing: de-identification without a secret.
        """
        from pacskit import transfer
        from pacskit.endpoints import open_sink, open_source, refuse_same

        general = query.to_query() if isinstance(query, _level_queries.LevelQuery) else query
        general.to_identifier(self.privacy)
        if destination is not None:
            refuse_same(self, source, destination)
        deidentifier = self.deidentifier_for(source if not isinstance(source, Path) else str(source), deidentify,
                                          deid_options)
        sink = None if destination is None else open_sink(self, destination, layout=layout, overwrite=overwrite,
                                                          deidentifier=deidentifier)
        label = "memory" if sink is None else sink.label
        try:
            def attempt() -> transfer.CopyResult:
                opened = open_source(self, source, method, wado_uri=wado_uri)
                try:
                    return transfer.copy(opened, general, sink, destination=label, dry_run=dry_run,
                                         progress=progress, cancellation=cancellation, transform=deidentifier)
                finally:
                    opened.close()

            result = self._retried(attempt, "copy", {"retries": retries, "retry_backoff": retry_backoff})
        finally:
            late = [] if sink is None else sink.close(abort=cancellation is not None and cancellation.cancelled)
        transfer.add_failures(result, late)
        return result

    def get_study(self, node: Node | str, study_uid: str, output: Path | str | None = None,
                  **options: Unpack[RetrieveOptions]) -> RetrieveResult:
        """Retrieve one study; see :meth:`get` for ``output`` and ``options``."""
        return self.get(node, study_query(study_uid), output, **options)

    def get_series(self, node: Node | str, study_uid: str, series_uid: str,
                   output: Path | str | None = None, **options: Unpack[RetrieveOptions]) -> RetrieveResult:
        """Retrieve one series; see :meth:`get` for ``output`` and ``options``."""
        return self.get(node, series_query(study_uid, series_uid), output, **options)

    def get_instances(self, node: Node | str, study_uid: str, series_uid: str,
                      sop_instance_uids: list[str], output: Path | str | None = None,
                      **options: Unpack[RetrieveOptions]) -> RetrieveResult:
        """Retrieve some instances of a series; see :meth:`get`."""
        return self.get(node, instances_query(study_uid, series_uid, sop_instance_uids), output, **options)

    def store(
        self,
        paths: Iterable[Path | str],
        node: Node | str,
        *,
        patient_id: str | None = None,
        study_uid: str | None = None,
        series_uid: str | None = None,
        parallel: int = 1,
        progress: StoreProgressCallback | None = None,
    ) -> StoreResult:
        """C-STORE the DICOM files under ``paths`` (folders recursively) to ``node``.

        Files are sent as they are on disk, unless the peer refuses their transfer syntax:
        then they are converted (decompressed) if pydicom can. Non-DICOM files are
        skipped and counted; ``patient_id``/``study_uid``/``series_uid`` keep only the
        files of one patient, study or series. ``parallel`` associations share the work.

        Returns the outcome; call ``raise_for_status()`` on it to turn failures into
        exceptions.

        Raises:
            InputError: a path does not exist, or no DICOM file is left to send.
            NetworkError: the peer cannot be reached or rejects the association.
        """
        web = self.web_node(node)
        if web is None:
            return _send.store(self.settings, self.node(node), paths, patient_id=patient_id,
                               study_uid=study_uid, series_uid=series_uid, parallel=parallel,
                               progress=progress)
        from pacskit.file_source import FileSource, send
        from pacskit.sinks import WebSink

        source = FileSource(paths, patient_id=patient_id, study_uid=study_uid, series_uid=series_uid)
        sink = WebSink(self._web_client(web, connections=parallel), parallel=parallel)
        try:
            return send(source, sink, progress)
        finally:
            sink.close()

    def commit(self, node: Node | str, instances: Query | Iterable[Reference], *,
               timeout: float = 60.0) -> CommitmentResult:
        """Ask ``node`` to commit to keeping ``instances`` (Storage Commitment Push Model,
        PS3.4 J.3): the references given, or every instance ``query`` matches on
        ``node`` (C-FIND at the image level, SOP Class UID asked for). The report is
        waited for ``timeout`` seconds, on the request's association or on a new one to
        our AE title and port (the peer must know them).

        Returns the outcome; call ``raise_for_status()`` on it to turn instances not
        committed into :class:`~pacskit.errors.NotCommitted`.

        Raises:
            InputError: nothing to commit (no match).
            QueryError: an invalid query.
            NetworkError, DimseError: the request failed (``NoCommitmentReport`` when no
                report came in time).
        """
        from pacskit.net.commitment import request_commitment

        target = self.node(node)
        references = self._matched_instances(target, instances) if isinstance(instances, _query.Query) else list(instances)
        if not references:
            raise InputError("nothing to commit: no instance matches")
        return request_commitment(self.settings, target, references, timeout=timeout)

    def _matched_instances(self, node: Node, query: Query) -> list[Reference]:
        image = _query.Query(level=_query.Level.IMAGE, model=query.model, match=query.match, limit=query.limit,
                      return_keys=tuple(dict.fromkeys([*query.return_keys, "SOPClassUID"])))
        references = []
        for match in self.iter_find(node, image):
            sop_class = str(match.get("SOPClassUID", "") or "")
            sop_instance = str(match.get("SOPInstanceUID", "") or "")
            if not sop_class:
                raise DimseError(f"{node.label} did not return the SOP Class UID of {sop_instance or 'an instance'}; "
                                 "name the files instead")
            references.append(_commitment.Reference(sop_class, sop_instance))
        return references

    def move(self, node: Node | str, query: Query | LevelQuery, destination: str,
             progress: MoveProgressCallback | None = None, **options: Unpack[RetryOptions]) -> MoveResult:
        """C-MOVE what ``query`` matches from ``node`` to the AE title ``destination``
        (PS3.4 C.4.2), tried again after a transient failure as ``retries`` allows;
        ``progress`` gets the sub-operation counts of each pending response.
        From ``"archive"`` or a folder, the files are sent by C-STORE to the node of the
        nodes table with that AE title (or name). A DICOMweb node has no move.

        Raises:
            MoveDestinationUnknown: ``node`` does not know ``destination`` (0xA801).
            QueryError, NetworkError, DimseError: the move failed.
        """
        general = query.to_query() if isinstance(query, _level_queries.LevelQuery) else query
        if isinstance(node, str) and _sources.is_local_source(node):
            return self._local_move(node, general, destination)
        target = self.node(node)
        return self._retried(lambda: _retrieve.move(self.settings, target, general, destination, self.privacy,
                                                    progress),
                             "C-MOVE", options)

    def _local_move(self, source: str, query: Query, destination: str) -> MoveResult:
        """A move from the archive or a folder: its files sent by C-STORE to the node of
        the nodes table that has the AE title (or the name) ``destination``, as a C-MOVE
        SCP does (PS3.4 C.4.2.3).

        Raises:
            MoveDestinationUnknown: no such node (0xA801, as a PACS would answer).
        """
        started = time.monotonic()
        names = [name for name, entry in self.settings.nodes.items()
                 if entry.ae_title == destination or name == destination]
        if not names:
            raise MoveDestinationUnknown(f"move destination {destination!r} is not in the nodes table",
                                         status=MOVE_DESTINATION_UNKNOWN)
        result = _models.MoveResult(destination=destination)
        files = list(_sources.local_files(self.settings, source, query))
        if files:
            stored = _send.store(self.settings, self.settings.resolve_node(names[0]), files)
            result.requests = 1
            result.completed = stored.sent - stored.warning
            result.warning = stored.warning
            result.failed = stored.failed + stored.not_dicom
        result.seconds = time.monotonic() - started
        return result

    def move_study(self, node: Node | str, study_uid: str, destination: str,
                   **options: Unpack[RetryOptions]) -> MoveResult:
        """C-MOVE one study to ``destination``; see :meth:`move`."""
        return self.move(node, study_query(study_uid), destination, **options)

    def move_series(self, node: Node | str, study_uid: str, series_uid: str, destination: str,
                    **options: Unpack[RetryOptions]) -> MoveResult:
        """C-MOVE one series to ``destination``; see :meth:`move`."""
        return self.move(node, series_query(study_uid, series_uid), destination, **options)

    def mpps_create(self, node: Node | str, dataset: Dataset, sop_instance_uid: str | None = None) -> str:
        """N-CREATE a Modality Performed Procedure Step IN PROGRESS on ``node`` (PS3.4
        F.7.2.1) with ``dataset`` (:mod:`pacskit.mpps.build` makes one); its SOP Instance
        UID, a new one unless given.

        Raises:
            ServiceNotSupported: ``node`` does not offer the MPPS SOP Class.
            DimseFailure: refused (its Offending Element and Error ID in the message).
            NetworkError: the association failed.
        """
        from pacskit.mpps.build import new_uid
        from pacskit.net.mpps import create_step

        return create_step(self.settings, self.node(node), dataset, sop_instance_uid or new_uid())

    def mpps_set(self, node: Node | str, sop_instance_uid: str, modifications: Dataset) -> None:
        """N-SET ``modifications`` on a step of ``node`` (PS3.4 F.7.2.2), e.g. the final
        one :func:`pacskit.mpps.build.final_set` makes.

        Raises:
            ServiceNotSupported, DimseFailure, NetworkError: as :meth:`mpps_create`.
        """
        from pacskit.net.mpps import set_step

        set_step(self.settings, self.node(node), sop_instance_uid, modifications)

    def mpps_get(self, node: Node | str, sop_instance_uid: str) -> Dataset:
        """A step's attributes as ``node`` has them (N-GET, MPPS Retrieve SOP Class, PS3.4
        F.8), patient names withheld unless the settings allow them.

        Raises:
            ServiceNotSupported, DimseFailure, NetworkError: as :meth:`mpps_create`.
        """
        from pacskit.net.mpps import get_step

        return self.privacy.scrub_response(get_step(self.settings, self.node(node), sop_instance_uid))


def study_query(study_uid: str) -> Query:
    """The retrieve identifier of one study (PS3.4 C.4.2.2.1)."""
    return _query.Query.build(_query.Level.STUDY, study_uid=study_uid)


def series_query(study_uid: str, series_uid: str) -> Query:
    """The retrieve identifier of one series."""
    return _query.Query.build(_query.Level.SERIES, study_uid=study_uid, series_uid=series_uid)


def instances_query(study_uid: str, series_uid: str, sop_instance_uids: list[str]) -> Query:
    """The retrieve identifier of some instances of a series (a UID list match)."""
    return _query.Query.build(_query.Level.IMAGE, study_uid=study_uid, series_uid=series_uid,
                       sop_instance_uid="\\".join(sop_instance_uids))


def _with_patient_id(query: Query, deidentifier: Deidentifier) -> Query:
    """``query`` also returning PatientID when dates are moved: the offset is the patient's."""
    if not deidentifier.modified_dates or "PatientID" in query.match or "PatientID" in query.return_keys:
        return query
    return query.model_copy(update={"return_keys": (*query.return_keys, "PatientID")})


def _deidentified(answers: Answers, deidentifier: Deidentifier) -> Answers:
    def each() -> Iterator[Dataset]:
        try:
            for match in answers:
                yield deidentifier(match, record=False)
        finally:
            answers.close()

    return _models.Answers(each(), answers.check)
