"""The synchronous client: every DICOM operation pacskit performs as a library call."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom import Dataset

from pacskit import retrieve as _retrieve
from pacskit import send as _send
from pacskit.finder import checked_matches
from pacskit.layout import DEFAULT_LAYOUT, Layout
from pacskit.models import (
    AnswerCheck,
    Answers,
    EchoResult,
    Matches,
    MoveResult,
    RetrieveResult,
    StoreResult,
)
from pacskit.net import c_echo
from pacskit.net.find import find_session
from pacskit.nodes import Node, is_web_address
from pacskit.privacy import PrivacyPolicy
from pacskit.query import Level, Query
from pacskit.retrieve import ProgressCallback
from pacskit.send import StoreProgressCallback
from pacskit.settings import Settings
from pacskit.sources import find_local, is_local_source
from pacskit.storage import FolderSink
from pacskit.worklist.query import WorklistQuery

if TYPE_CHECKING:
    from pacskit.deid import Deidentifier
    from pacskit.web.client import DicomWebClient, WebNode


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

        return DicomWebClient(web, self.privacy, timeout=self.settings.network_timeout,
                              connect_timeout=self.settings.connect_timeout,
                              connections=max(1, connections),
                              max_search_answer=self.settings.max_search_answer)

    def _wado_retrieve(self, web: WebNode, query: Query, sink: FolderSink | None,
                       progress: ProgressCallback | None, *, wado_uri: bool,
                       transform: Deidentifier | None = None) -> RetrieveResult:
        started = time.monotonic()
        if sink is not None:
            sink.prepare()
        result = RetrieveResult(method="wado-uri" if wado_uri else "wado-rs")
        receiver = _retrieve.Receiver(result, sink, self.privacy, progress, None, transform)
        with self._web_client(web) as client:
            client.retrieve(query, receiver, wado_uri=wado_uri)
        result.seconds = time.monotonic() - started
        return result

    def echo(self, node: Node | str) -> EchoResult:
        """Verify that ``node`` answers a C-ECHO (PS3.4 Annex A).

        Raises:
            UnknownNode, InvalidAddress: ``node`` cannot be resolved.
            NetworkError: the peer cannot be reached or rejects the association.
            DimseError: the C-ECHO failed.
        """
        target = self.node(node)
        status, associate_s, rtt_s = c_echo(self.settings, target)
        return EchoResult(node=target, status=status, associate_ms=associate_s * 1e3, rtt_ms=rtt_s * 1e3)

    def _deidentifier(self, node: Node | str, deidentify: bool, options: Iterable[str]) -> Deidentifier | None:
        from pacskit.deid.configured import configured_deidentifier

        return configured_deidentifier(self.settings, node, deidentify, options)

    def iter_find(self, node: Node | str, query: Query, *, deidentify: bool = False,
                  deid_options: Iterable[str] = ()) -> Answers:
        """C-FIND ``query`` on ``node``, yielding each match as it arrives (PS3.4 C.4.1).
        ``node`` may also be ``"archive"`` (the local archive's index) or a folder of
        DICOM files, searched with the same rules (:mod:`pacskit.sources`).

        Patient names are neither requested nor returned unless the settings opt in.
        After ``query.limit`` matches the rest is cancelled (C-CANCEL). Keys that a
        hierarchical SCP would ignore are honoured by querying in steps
        (:mod:`pacskit.finder`). Every answer of a peer is checked against the query:
        those that fail a key the peer ignored are dropped, those that cannot be checked
        are kept; the result's ``check`` (:class:`~pacskit.models.AnswerCheck`) counts
        both once the iteration ends.

        With ``deidentify`` (or ``deid_options``, or a node configured with
        ``deidentify = true``) each match is de-identified as a retrieved instance is
        (PS3.15 Annex E, :mod:`pacskit.deid`): its UIDs are the ones :meth:`get` writes.

        Raises:
            QueryError: the query is invalid for its level (or asks for names).
            InvalidAddress: a malformed DICOMweb URL.
            NetworkError, DimseError: the C-FIND failed.
            DeidentificationSecretMissing: de-identification without a secret.
        """
        query.to_identifier(self.privacy)
        deidentifier = self._deidentifier(node, deidentify, deid_options)
        if deidentifier is not None:
            return _deidentified(self._answers(node, _with_patient_id(query, deidentifier)), deidentifier)
        return self._answers(node, query)

    def _answers(self, node: Node | str, query: Query) -> Answers:
        check = AnswerCheck(level=query.level)
        web = self.web_node(node)
        if web is not None:
            return Answers(self._web_search(web, query, check), check)
        if isinstance(node, str) and is_local_source(node):
            return Answers(self._local_search(node, query, check), check)
        return Answers(self._dimse_search(self.node(node), query, check), check)

    def _web_search(self, web: WebNode, query: Query, check: AnswerCheck) -> Iterator[Dataset]:
        with self._web_client(web) as client:
            yield from client.checked_search(query, check)

    def _local_search(self, source: str, query: Query, check: AnswerCheck) -> Iterator[Dataset]:
        for match in find_local(self.settings, source, query, query.return_keywords(self.privacy)):
            check.answers += 1
            yield self.privacy.scrub_response(match)

    def _dimse_search(self, node: Node, query: Query, check: AnswerCheck) -> Iterator[Dataset]:
        with find_session(self.settings, node, query.model.value) as session:
            for match in checked_matches(session, query, self.privacy, check):
                yield self.privacy.scrub_response(match)

    def find(self, node: Node | str, query: Query, *, deidentify: bool = False,
             deid_options: Iterable[str] = ()) -> Matches:
        """All the matches of :meth:`iter_find`, as a list with its ``check``."""
        return Matches(self.iter_find(node, query, deidentify=deidentify, deid_options=deid_options))

    def iter_worklist(self, node: Node | str, query: WorklistQuery | None = None,
                      **filters: object) -> Iterator[Dataset]:
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
        if query is None:
            query = WorklistQuery.build(**filters)  # type: ignore[arg-type]
        identifier = query.to_identifier(self.privacy)
        with find_session(self.settings, self.node(node), "worklist") as session:
            for item in session.find(identifier, query.limit):
                yield self.privacy.scrub_response(item)

    def worklist(self, node: Node | str, query: WorklistQuery | None = None,
                 **filters: object) -> list[Dataset]:
        """Every item of :meth:`iter_worklist`, as the SCP sent them.

        >>> client.worklist("ris", modality="CT", date="today")
        """
        return list(self.iter_worklist(node, query, **filters))

    def get(
        self,
        node: Node | str,
        query: Query,
        output: Path | str | None = None,
        *,
        layout: str = DEFAULT_LAYOUT,
        overwrite: bool = False,
        method: str = "get",
        progress: ProgressCallback | None = None,
        wado_uri: bool = False,
        deidentify: bool = False,
        deid_options: Iterable[str] = (),
    ) -> RetrieveResult:
        """Retrieve what ``query`` matches into ``output`` (a folder) or, without
        ``output``, into memory (``RetrieveResult.instances``).

        ``method`` is ``get`` (C-GET, pacskit is the Storage SCP on the same association),
        ``move`` (C-MOVE to pacskit's own AE title, received by a Storage SCP on the
        configured port) or ``auto`` (C-GET, falling back to C-MOVE when the peer refuses
        C-GET). A query that is not made of unique keys is first resolved by C-FIND.
        From a DICOMweb node the retrieve is by WADO-RS, or instance by instance by
        WADO-URI with ``wado_uri``.
        Files are written atomically under ``layout``; those already present are kept
        unless ``overwrite``. A layout without ``{SOPInstanceUID}`` may give instances the
        same path: each then gets a file of its own (``0001.dcm``, ``0001-2.dcm``...).
        Patient names are blanked unless the settings opt in, and a layout with a
        patient-name field is refused before anything is retrieved. With ``deidentify``
        (or ``deid_options``, or a node configured with ``deidentify = true``) every
        instance is de-identified before it is written or returned (PS3.15 Annex E,
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
        deidentifier = self._deidentifier(node, deidentify, deid_options)
        sink = (
            FolderSink(output, Layout(layout), overwrite=overwrite, privacy=self.privacy,
                       deidentifier=deidentifier)
            if output is not None
            else None
        )
        web = self.web_node(node)
        if web is not None:
            return self._wado_retrieve(web, query, sink, progress, wado_uri=wado_uri, transform=deidentifier)
        return _retrieve.retrieve(self.settings, self.node(node), query, method=method,
                                  sink=sink, privacy=self.privacy, progress=progress, transform=deidentifier)

    def get_study(self, node: Node | str, study_uid: str, output: Path | str | None = None,
                  **options: object) -> RetrieveResult:
        """Retrieve one study; see :meth:`get` for ``output`` and ``options``."""
        query = Query.build(Level.STUDY, study_uid=study_uid)
        return self.get(node, query, output, **options)  # type: ignore[arg-type]

    def get_series(self, node: Node | str, study_uid: str, series_uid: str,
                   output: Path | str | None = None, **options: object) -> RetrieveResult:
        """Retrieve one series; see :meth:`get` for ``output`` and ``options``."""
        query = Query.build(Level.SERIES, study_uid=study_uid, series_uid=series_uid)
        return self.get(node, query, output, **options)  # type: ignore[arg-type]

    def get_instances(self, node: Node | str, study_uid: str, series_uid: str,
                      sop_instance_uids: list[str], output: Path | str | None = None,
                      **options: object) -> RetrieveResult:
        """Retrieve some instances of a series; see :meth:`get`."""
        query = Query.build(Level.IMAGE, study_uid=study_uid, series_uid=series_uid,
                            sop_instance_uid="\\".join(sop_instance_uids))
        return self.get(node, query, output, **options)  # type: ignore[arg-type]

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
        if web is not None:
            with self._web_client(web, connections=parallel) as client:
                return _send.store_with(lambda files, tally: client.store(files, tally, parallel=parallel),
                                        paths, patient_id=patient_id, study_uid=study_uid,
                                        series_uid=series_uid, progress=progress)
        return _send.store(self.settings, self.node(node), paths, patient_id=patient_id,
                           study_uid=study_uid, series_uid=series_uid, parallel=parallel,
                           progress=progress)

    def move(self, node: Node | str, query: Query, destination: str) -> MoveResult:
        """C-MOVE what ``query`` matches from ``node`` to the AE title ``destination``.

        Raises:
            MoveDestinationUnknown: ``node`` does not know ``destination`` (0xA801).
            QueryError, NetworkError, DimseError: the move failed.
        """
        return _retrieve.move(self.settings, self.node(node), query, destination, self.privacy)


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

    return Answers(each(), answers.check)
