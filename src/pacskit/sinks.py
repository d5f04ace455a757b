"""Sinks: where a copy puts instances (``pacskit copy``, :meth:`pacskit.Client.copy`).

A sink takes Part 10 instances one by one (:meth:`Sink.write_encoded`, as
:class:`pacskit.retrieve.Receiver` hands them over), says which of a list of instances it
already holds (:meth:`Sink.present`, asked before a copy so that a re-run sends only what
is missing) and is closed at the end (:meth:`Sink.close`, which sends what a batching
sink still holds). A refused instance raises a :class:`~pacskit.errors.PacskitError`:
that instance fails, the others go on. Sinks take instances from several threads at once
(the associations of a C-MOVE to ourselves).

- :class:`FolderDestination`: a folder under a layout (:class:`~pacskit.storage.FolderSink`);
- :class:`ArchiveSink`: the archive, through the same ingest as a C-STORE into ``serve``;
- :class:`DimseSink`: a DIMSE node, by C-STORE (PS3.4 Annex B) on one kept association,
  negotiated again when an instance needs a context it lacks;
- :class:`WebSink`: a DICOMweb server, by STOW-RS (PS3.18 10.5) in batches.

:class:`Filtered` puts de-identification in front of a sink when asked; the names the
privacy policy withholds are blanked by the folder and archive sinks themselves (the
archive sink's :class:`Names` policy keeps them for ``archive import``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from pacskit.encoded import parse_file_meta
from pacskit.errors import (
    AssociationAborted,
    DimseFailure,
    NetworkError,
    NetworkTimeout,
    OutputError,
    PacskitError,
    ServiceNotSupported,
)
from pacskit.models import InstanceFailure
from pacskit.privacy import PrivacyPolicy
from pacskit.retrieve import CANCELLED
from pacskit.scan import DicomFile, HeldInstance, read_bytes, read_file, scan
from pacskit.settings import ArchiveSettings
from pacskit.storage import FolderSink, WrittenInstance, names_withheld

if TYPE_CHECKING:
    from pynetdicom.presentation import PresentationContext

    from pacskit.archive.index import Index
    from pacskit.archive.ingest import Ingest, Ingested, Received
    from pacskit.deid import Deidentifier
    from pacskit.net.association import Association
    from pacskit.net.store import FileSender, OutcomeHandler, SendOutcome
    from pacskit.nodes import Node
    from pacskit.settings import Settings
    from pacskit.web.client import DicomWebClient

LOG = logging.getLogger(__name__)

Filter = Callable[[bytes], bytes]
Finder = Callable[[dict[str, str], int | None], Iterable[str]]
"""Asks a node for the SOP Instance UIDs it holds that match unique keys (an IMAGE-level
C-FIND or QIDO-RS), at most ``limit`` of them."""


class InstanceRefused(PacskitError):
    """The destination refused one instance (its status and reason in the message)."""

    exit_code = 26


class Sink(Protocol):
    """Where instances go (see the module)."""

    client_side: bool

    @property
    def label(self) -> str:
        """How the destination is named in messages and summaries."""

    def prepare(self) -> None: ...

    def present(self, instances: Sequence[tuple[str, str, str]]) -> set[str]: ...

    def holds_any(self, match: dict[str, str]) -> bool: ...

    def write_encoded(self, data: bytes | BinaryIO) -> WrittenInstance: ...

    def close(self, *, abort: bool = False) -> list[InstanceFailure]:
        """Finish (what is held sent on, what is open released) and return the instances
        refused meanwhile; with ``abort`` (after a cancellation) send nothing more: the
        instances held are returned as cancelled."""
        ...


def _bytes(data: bytes | BinaryIO) -> bytes:
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    data.seek(0)
    return data.read()


def filtered(data: bytes | BinaryIO, filters: Sequence[Filter]) -> bytes:
    """The bytes of ``data`` through ``filters``, in order."""
    raw = _bytes(data)
    for step in filters:
        raw = step(raw)
    return raw


def _sop_instance_uid(data: bytes) -> str:
    meta, _ = parse_file_meta(data[:65536], complete=False)
    return meta.get(0x0003, "")


class FolderDestination(FolderSink):
    """A folder under a layout; what it holds is found by reading the file meta
    information of the DICOM files already in it."""

    client_side = True

    @property
    def label(self) -> str:
        return str(self.root)

    def present(self, instances: Sequence[tuple[str, str, str]]) -> set[str]:
        if self.overwrite or not self.root.is_dir():
            return set()
        held = {item.sop_instance_uid for item in scan([self.root]).files}
        return {sop for _, _, sop in instances if sop in held}

    def holds_any(self, match: dict[str, str]) -> bool:
        """Whether the folder may hold an instance under ``match``: whether it holds any
        DICOM file (the file meta does not say which study a file is of)."""
        if self.overwrite or not self.root.is_dir():
            return False
        return any(p.is_file() for p in self.root.rglob("*"))

    def close(self, *, abort: bool = False) -> list[InstanceFailure]:
        return []


class Names(str, Enum):
    """What the archive sink does with patient names: ``withheld`` as the client's privacy
    policy says (``copy FROM archive``: the archive is on the client side), or ``kept`` as
    the files carry them (``archive import``: the archive stores what it is sent, as a
    C-STORE into ``pacskit serve`` does)."""

    withheld = "withheld"
    kept = "kept"


class ArchiveSink:
    """The archive of ``settings``: every instance goes through
    :class:`~pacskit.archive.ingest.Ingest`, as a C-STORE into ``pacskit serve`` does,
    its patient names withheld or kept as ``names`` says (:class:`Names`). Nothing is
    created before the first instance comes (:meth:`prepare`): a dry run into an archive
    that does not exist yet leaves none behind.

    Args:
        settings: the archive's folder and index (unused with ``ingest``).
        names: the names policy.
        privacy: the names withheld, with ``Names.withheld``.
        ingest: an ingest already open (``archive import`` runs in an
            :class:`~pacskit.archive.Archive` it has recovered); it is not closed here.

    Raises:
        ConfigError: the index cannot be opened.
    """

    client_side = True
    label = "archive"

    def __init__(self, settings: ArchiveSettings | None = None, *, names: Names = Names.withheld,
                 privacy: PrivacyPolicy | None = None, ingest: Ingest | None = None) -> None:
        if names is Names.withheld and privacy is None:
            raise ValueError("withholding names needs the privacy policy")
        if settings is None and ingest is None:
            raise ValueError("the archive sink needs the archive's settings or its ingest")
        self.settings = settings or ArchiveSettings()
        self.names = names
        self.privacy = privacy
        self.index: Index | None = None
        self.ingest: Ingest | None = ingest
        self._own = ingest is None
        self._lock = threading.Lock()
        if ingest is None and (self.settings.db or (self.settings.data_dir / "index.db").exists()):
            self.index = self._open_index()

    def _open_index(self) -> Index:
        from pacskit.archive.index import Index

        return Index.open(self.settings.db_url())

    def prepare(self) -> None:
        """Create the archive if it does not exist, and open its ingest."""
        from pacskit.archive.ingest import Ingest

        with self._lock:
            if self.ingest is not None:
                return
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            if self.index is None:
                self.index = self._open_index()
            self.ingest = Ingest(self.settings, self.index)

    def _held(self, sop: str) -> bool:
        if self.ingest is not None and not self._own:
            return self.ingest.index.path_of(sop) is not None
        return self.index is not None and self.index.path_of(sop) is not None

    def present(self, instances: Sequence[tuple[str, str, str]]) -> set[str]:
        return {sop for _, _, sop in instances if self._held(sop)}

    def holds_any(self, match: dict[str, str]) -> bool:
        from pacskit.query import InformationModel, Level, Query

        if self.index is None:
            return False
        model = InformationModel.PATIENT_ROOT if "StudyInstanceUID" not in match else InformationModel.STUDY_ROOT
        found = self.index.find(Query(level=Level.IMAGE, model=model, match=match), keys=["SOPInstanceUID"],
                                limit=1)
        return next(iter(found), None) is not None

    def write_encoded(self, data: bytes | BinaryIO) -> WrittenInstance:
        from pacskit.archive.ingest import SUCCESS, Received

        raw = self._named(_bytes(data))
        meta, offset = parse_file_meta(raw)
        if offset is None or not {0x0002, 0x0003, 0x0010} <= set(meta):
            raise OutputError("the instance has no file meta information")
        outcome = self._ingest(Received(meta[0x0002], meta[0x0003], meta[0x0010], raw[offset:]))
        if outcome.status != SUCCESS:
            raise InstanceRefused(f"the archive refused it: {outcome.reason}")
        return WrittenInstance(outcome.path or Path(), meta[0x0003], outcome.duplicate,
                               0 if outcome.duplicate else len(raw))

    def write_file(self, item: DicomFile) -> Ingested:
        """Ingest a file on disk (``archive import``): its UIDs as :func:`~pacskit.scan.read_file`
        read them, its bytes as they are when names are kept.

        Raises:
            OSError: the file cannot be read.
            OutputError: names withheld from a file that is not DICOM after all.
        """
        from pacskit.archive.ingest import Received

        raw = item.path.read_bytes()
        if self.names is Names.kept:
            return self._ingest(Received(item.sop_class_uid, item.sop_instance_uid, item.transfer_syntax,
                                         raw[item.dataset_offset:]))
        raw = self._named(raw)
        _, offset = parse_file_meta(raw)
        return self._ingest(Received(item.sop_class_uid, item.sop_instance_uid, item.transfer_syntax,
                                     raw[offset or item.dataset_offset:]))

    def _named(self, raw: bytes) -> bytes:
        return raw if self.names is Names.kept or self.privacy is None else names_withheld(raw, self.privacy)

    def _ingest(self, received: Received) -> Ingested:
        if self.ingest is None:
            self.prepare()
        assert self.ingest is not None
        return self.ingest.ingest(received)

    def close(self, *, abort: bool = False) -> list[InstanceFailure]:
        try:
            if self.ingest is not None and self._own:
                self.ingest.close()
        finally:
            if self.index is not None:
                self.index.close()
        return []


@dataclass(frozen=True)
class _Kind:
    """A (SOP class, transfer syntax) offered, as :func:`~pacskit.net.store.contexts_for` takes it."""

    sop_class_uid: str
    transfer_syntax: str


class _AskedForWhatItHolds:
    """A destination asked, through its :data:`Finder`, which instances it already holds."""

    label: str
    find: Finder | None

    def present(self, instances: Sequence[tuple[str, str, str]]) -> set[str]:
        from pacskit.retrieve_plan import answered

        return answered(presence(instances), lambda match: self._held(match, None))

    def holds_any(self, match: dict[str, str]) -> bool:
        found = self._held(match, 1)
        return found is None or bool(found)

    def _held(self, match: dict[str, str], limit: int | None) -> list[str] | None:
        """The SOP Instance UIDs ``node`` holds under ``match``, or None when it cannot
        be asked: a storage SCP that offers no C-FIND (a workstation, DCMTK's storescp)
        is sent every instance, and says itself which it already had."""
        if self.find is None:
            return None
        try:
            return list(self.find(match, limit))
        except ServiceNotSupported as exc:
            cannot_ask(exc)
            self.find = None
            return None


def presence(instances: Sequence[tuple[str, str, str]]) -> Generator[dict[str, str], list[str] | None, set[str]]:
    """Which of ``instances`` a destination holds, without I/O: the unique keys of each
    of their series yielded, the SOP Instance UIDs it holds there sent back (None: it
    cannot be asked, and holds none as far as anyone knows)."""
    held: set[str] = set()
    for study, serie in sorted({(study, serie) for study, serie, _ in instances}):
        found = yield {"StudyInstanceUID": study, "SeriesInstanceUID": serie}
        if found is None:
            return set()
        held.update(found)
    return {sop for _, _, sop in instances if sop in held}


def cannot_ask(exc: ServiceNotSupported) -> None:
    """Say that a destination offering no search is sent every instance (its finder is
    dropped)."""
    LOG.warning("%s; what it already holds cannot be known, so every instance is sent", exc)


def forward_proposal(offered: dict[tuple[str, str], _Kind]) -> tuple[list[PresentationContext],
                                                                     dict[tuple[str, str], _Kind]]:
    """The contexts of a forward's association (:class:`DimseSink`, and
    :class:`pacskit.aio_forward.AsyncDimseSink`): one per (SOP class, transfer syntax)
    ``offered`` so far (only the latest, when they no longer fit), then the storage
    classes a C-GET offers in the rest of the 128; and what is offered now."""
    from pacskit.net.contexts import MAX_CONTEXTS, retrieve_storage_contexts
    from pacskit.net.store import contexts_for

    contexts = contexts_for(list(offered.values()))
    if len(contexts) > MAX_CONTEXTS:
        latest = next(reversed(offered.values()))
        offered = {(latest.sop_class_uid, latest.transfer_syntax): latest}
        contexts = contexts_for([latest])
    contexts += retrieve_storage_contexts(len(contexts))[:MAX_CONTEXTS - len(contexts)]
    return contexts, offered


class DimseSink(_AskedForWhatItHolds):
    """A DIMSE node, by C-STORE on one association kept for the whole copy. The first
    association offers the instance's own (SOP class, transfer syntax) and, in the rest
    of the 128 contexts, the storage classes a C-GET offers
    (:func:`~pacskit.net.contexts.retrieve_storage_contexts`); an instance whose class and
    syntax the peer did not accept, and that was not offered alone yet, opens a new
    association offering it beside those seen so far; one the peer accepts in no syntax
    we can send fails alone. An association lost mid-store is opened again once for that instance.

    Files on disk (:meth:`store_files`, what ``pacskit store`` sends) go as ``store`` has
    always sent them: over ``parallel`` associations, each taking its share, the file in
    flight set aside and tried again at the end when an association is lost
    (:func:`~pacskit.net.store.send_files`).

    Args:
        settings: our AE title and timeouts.
        node: the destination.
        find: how to ask ``node`` which instances it holds (a C-FIND at the image
            level, see :meth:`present`).
        parallel: associations at once for :meth:`store_files`.
    """

    client_side = False

    def __init__(self, settings: Settings, node: Node,
                 find: Finder | None = None, *, parallel: int = 1) -> None:
        self.settings = settings
        self.node = node
        self.label = node.label
        self.find = find
        self.parallel = max(1, parallel)
        self.associations = 0
        self._offered: dict[tuple[str, str], _Kind] = {}
        self._association: Association | None = None
        self._context: ExitStack | None = None
        self._sender: FileSender | None = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        pass

    def write_encoded(self, data: bytes | BinaryIO) -> WrittenInstance:
        with self._lock:
            return self._write(_bytes(data))

    def _write(self, raw: bytes) -> WrittenInstance:
        try:
            item = read_bytes(raw)
        except Exception as exc:  # noqa: BLE001 - not DICOM: this instance fails alone
            raise OutputError(f"not a DICOM instance ({type(exc).__name__})") from None
        outcome = self._send(item)
        if outcome.status is None or outcome.outcome.value == "failure":
            raise InstanceRefused(outcome.reason or f"{self.label} refused it")
        return WrittenInstance(Path(self.label) / item.sop_instance_uid, item.sop_instance_uid, False, len(raw))

    def store_files(self, files: Sequence[DicomFile], on_outcome: OutcomeHandler) -> None:
        """C-STORE ``files`` as they are on disk, each outcome to ``on_outcome``, over
        :attr:`parallel` associations sharing them in turn.

        Raises:
            NetworkError: no file was stored, and the first association to fail failed so.
        """
        from pacskit.net.status import Outcome
        from pacskit.net.store import send_files
        from pacskit.send import shares

        stored = False

        def counted(outcome: SendOutcome) -> None:
            nonlocal stored
            stored = stored or outcome.outcome is not Outcome.FAILURE
            on_outcome(outcome)

        split = shares(list(files), self.parallel)
        errors: list[PacskitError] = []
        with ThreadPoolExecutor(max_workers=len(split), thread_name_prefix="pacskit-store") as pool:
            for future in [pool.submit(send_files, self.settings, self.node, share, counted) for share in split]:
                try:
                    future.result()
                except PacskitError as exc:
                    errors.append(exc)
        if errors and not stored and isinstance(errors[0], NetworkError):
            raise errors[0]

    def _send(self, item: HeldInstance) -> SendOutcome:
        key = (item.sop_class_uid, item.transfer_syntax)
        if self._sender is None or key not in self._sender.contexts and key not in self._offered:
            self._offered.setdefault(key, _Kind(*key))
            self._open()
        assert self._sender is not None
        try:
            return self._sender.send(item)
        except (AssociationAborted, NetworkTimeout):
            self._open()
            return self._sender.send(item)

    def _open(self) -> None:
        from pacskit.net.association import associate
        from pacskit.net.store import FileSender, conversion_timeout, storage_targets

        self._release()
        contexts, self._offered = forward_proposal(self._offered)
        stack = ExitStack()
        association = stack.enter_context(associate(self.settings, self.node, contexts))
        self._context, self._association = stack, association
        self.associations += 1
        if not association.contexts:
            self._release()
            raise DimseFailure(f"{self.label} accepted none of the storage SOP classes offered")
        self._sender = FileSender(association, storage_targets(association),
                                  conversion_timeout=conversion_timeout(self.settings))

    def _release(self) -> None:
        stack, self._context, self._association, self._sender = self._context, None, None, None
        if stack is not None:
            try:
                stack.close()
            except NetworkError:
                pass

    def close(self, *, abort: bool = False) -> list[InstanceFailure]:
        self._release()
        return []


class StowBatches(_AskedForWhatItHolds):
    """What a STOW-RS sink does without I/O, the same on a thread and on the event loop
    (:class:`WebSink`, :class:`pacskit.aio_forward.AsyncWebSink`): each instance held in
    a scratch folder (created with the first), taken off in batches of up to ``batch``,
    each file's outcome tallied into :attr:`failures` with the server's reason (PS3.18
    10.5.3), a batch whose request failed as a whole failed for each of its instances."""

    client_side = False

    def __init__(self, label: str, find: Finder | None, batch: int) -> None:
        self.label = label
        self.find = find
        self.batch = batch
        self.failures: list[InstanceFailure] = []
        self._pending: list[DicomFile] = []
        self._serial = 0
        self._scratch: Path | None = None

    def prepare(self) -> None:
        pass

    def _hold(self, raw: bytes) -> tuple[WrittenInstance, bool]:
        """``raw`` held for the next batch; whether that batch is full.

        Raises:
            OutputError: not a DICOM instance.
        """
        self._serial += 1
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="pacskit-stow-"))
        path = self._scratch / f"{self._serial}.dcm"
        path.write_bytes(raw)
        try:
            item = read_file(path)
        except Exception as exc:  # noqa: BLE001
            path.unlink()
            raise OutputError(f"not a DICOM instance ({type(exc).__name__})") from None
        self._pending.append(item)
        written = WrittenInstance(Path(self.label) / item.sop_instance_uid, item.sop_instance_uid, False, len(raw))
        return written, len(self._pending) >= self.batch

    def _take_batch(self) -> list[DicomFile]:
        pending, self._pending = self._pending, []
        return pending

    def _tally(self, outcome: SendOutcome) -> None:
        if outcome.outcome.value == "failure":
            self.failures.append(InstanceFailure(sop_instance_uid=outcome.file.sop_instance_uid,
                                                 reason=outcome.reason or "refused"))

    def _batch_failed(self, pending: list[DicomFile], exc: PacskitError) -> None:
        named = {f.sop_instance_uid for f in self.failures}
        self.failures.extend(InstanceFailure(sop_instance_uid=f.sop_instance_uid, reason=str(exc))
                             for f in pending if f.sop_instance_uid not in named)

    def _cancelled_held(self) -> list[InstanceFailure]:
        """The instances held and not to be sent (after a cancellation), as failures."""
        return [InstanceFailure(sop_instance_uid=f.sop_instance_uid, reason=CANCELLED) for f in self._pending]

    @staticmethod
    def _drop(pending: list[DicomFile]) -> None:
        for item in pending:
            item.path.unlink(missing_ok=True)

    def _remove_scratch(self) -> None:
        """Remove the scratch folder and what it still holds (nothing of it is sent)."""
        self._pending = []
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


class WebSink(StowBatches):
    """A DICOMweb server, by STOW-RS: instances are held in a scratch folder and sent in
    requests of up to ``batch`` instances; the server's refusals come back from
    :meth:`close` (or are kept until then), each with its reason (:class:`StowBatches`).

    Files on disk (:meth:`store_files`, what ``pacskit store`` sends) go as they are, in
    ``parallel`` requests at a time.

    Args:
        client: the DICOMweb client (closed by :meth:`close`).
        find: how to ask the server which instances of a series it holds (QIDO-RS).
        parallel: requests at once for :meth:`store_files`.
    """

    def __init__(self, client: DicomWebClient, find: Finder | None = None,
                 batch: int = 50, *, parallel: int = 1) -> None:
        super().__init__(client.node.label, find, batch)
        self.client = client
        self.parallel = max(1, parallel)
        self._lock = threading.Lock()

    def write_encoded(self, data: bytes | BinaryIO) -> WrittenInstance:
        with self._lock:
            written, full = self._hold(_bytes(data))
            if full:
                self._flush()
            return written

    def store_files(self, files: Sequence[DicomFile], on_outcome: OutcomeHandler) -> None:
        """STOW-RS ``files`` as they are on disk, each outcome to ``on_outcome``.

        Raises:
            NetworkError, HttpFailure: every request failed the same way.
        """
        self.client.store(list(files), on_outcome, parallel=self.parallel)

    def _flush(self) -> None:
        pending = self._take_batch()
        try:
            if pending:
                self.client.store(pending, self._tally)
        except PacskitError as exc:
            self._batch_failed(pending, exc)
        finally:
            self._drop(pending)

    def close(self, *, abort: bool = False) -> list[InstanceFailure]:
        dropped: list[InstanceFailure] = []
        try:
            with self._lock:
                if abort:
                    dropped = self._cancelled_held()
                else:
                    self._flush()
        finally:
            self.client.close()
            self._remove_scratch()
        return self.failures + dropped


class Filtered:
    """``sink`` behind ``filters``, applied in order to each instance's bytes."""

    def __init__(self, sink: Sink, filters: Sequence[Filter]) -> None:
        self.sink = sink
        self.filters = list(filters)
        self.label = sink.label
        self.client_side = sink.client_side

    def prepare(self) -> None:
        self.sink.prepare()

    def present(self, instances: Sequence[tuple[str, str, str]]) -> set[str]:
        return self.sink.present(instances)

    def holds_any(self, match: dict[str, str]) -> bool:
        return self.sink.holds_any(match)

    def write_encoded(self, data: bytes | BinaryIO) -> WrittenInstance:
        return self.sink.write_encoded(filtered(data, self.filters))

    def close(self, *, abort: bool = False) -> list[InstanceFailure]:
        return self.sink.close(abort=abort)


def deid_filter(deidentifier: Deidentifier) -> Filter:
    """De-identification as a filter (PS3.15 Annex E, :mod:`pacskit.deid`): in the bytes
    when :func:`~pacskit.deid.encoded.deidentify_encoded` can, else by pydicom."""
    from io import BytesIO

    from pydicom import dcmread
    from pydicom.filewriter import dcmwrite

    from pacskit.deid.encoded import deidentify_encoded

    def apply(data: bytes) -> bytes:
        changed = deidentify_encoded(data, deidentifier)
        if changed is not None:
            return changed
        dataset = dcmread(BytesIO(data))
        deidentifier(dataset)
        buffer = BytesIO()
        dcmwrite(buffer, dataset, enforce_file_format=True)
        return buffer.getvalue()

    return apply
