"""Copy between any two places: a Query run against a Source, what matches sent to a Sink.

The plan is made once, for every kind of source, from its search alone. A copy
(:func:`plan`) takes the query's matches at its level, each then expanded into its
instances by an IMAGE-level search (PS3.4 C.4.1) with its unique keys; the destination is
asked which of those it already holds (by SOP Instance UID), and only the others are
fetched: a copy run again sends what the first did not. A retrieve (``get``,
:func:`plan_at_level`) fetches each match whole at the query's level, and does not search
at all when the query is already a retrieve identifier. Sources fetch what they were
asked for (a :class:`Plan`):

- :class:`DimseSource`: C-GET, or C-MOVE to ourselves (PS3.4 C.4.2, C.4.3), one request
  per series (all its instances wanted) or per UID list (some of them), on one association;
- :class:`WebSource`: WADO-RS (PS3.18 10.4), one request per series or instance, or
  WADO-URI (PS3.18 9), one request per instance;
- :class:`LocalSource`: the archive's index and files, or a folder indexed once.

Sinks are in :mod:`pacskit.sinks`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict
from pydicom import Dataset

from pacskit.cancellation import Cancellation
from pacskit.errors import PartialFailure, RetrieveFailed
from pacskit.models import InstanceFailure, RetrieveResult
from pacskit.privacy import PrivacyPolicy
from pacskit.query import UNIQUE_KEYS, InformationModel, Level, Query
from pacskit.retrieve import CANCELLED, ProgressCallback, Receiver, retrieve_requests
from pacskit.retrieve_plan import (
    RELATED_INSTANCES,
    Plan,
    Planned,
    Whole,
    answered,
    as_count,
    by_series,
    dimse_requests,
    direct_plan,
    is_direct,
    level_search,
    wado_rs_resources,
    wado_uri_instances,
    web_fetch_level,
    wholes_of,
)

if TYPE_CHECKING:
    from pacskit.client import Client
    from pacskit.nodes import Node
    from pacskit.retrieve import InstanceSink
    from pacskit.sinks import Sink
    from pacskit.web.client import WebNode

class Source(Protocol):
    """Where instances come from: it searches (C-FIND, QIDO-RS, the index) and fetches.

    ``whole_levels`` are the levels a copy may fetch a match of whole (one request for a
    study or a series); :meth:`fetch_level` is the level a retrieve fetches a match of
    ``level`` at; :meth:`fetches_direct` whether a query made of unique keys is fetched
    as it is, with no search first."""

    label: str
    skipped: int
    whole_levels: frozenset[Level]

    def search(self, query: Query) -> Iterator[Dataset]: ...

    def fetch_level(self, level: Level) -> Level: ...

    def fetches_direct(self, query: Query) -> bool: ...

    def fetch(self, plan: Plan, sink: InstanceSink | None, progress: ProgressCallback | None,
              cancellation: Cancellation | None, transform: Any) -> RetrieveResult: ...

    def close(self) -> None: ...


class CopyResult(BaseModel):
    """The outcome of a copy.

    Attributes:
        source, destination: where from and where to.
        planned: instances the query matches at the source.
        present: of those, instances the destination already held (not copied again).
        copied: instances the destination took.
        failed: instances that did not get there, each with its reason.
        skipped_files: files of a source folder passed over (not DICOM, unreadable).
        cancelled: the copy was stopped before its end.
        wanted: SOP Instance UIDs that were to be copied (what ``dry_run`` lists).
        bytes, seconds: bytes received from the source, and wall time.
        instances: the datasets, when copied to memory.
        check: how the source's answers compared with the query (:class:`~pacskit.models.AnswerCheck`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    source: str
    destination: str
    planned: int = 0
    present: int = 0
    copied: int = 0
    failed: list[InstanceFailure] = []
    skipped_files: int = 0
    cancelled: bool = False
    dry_run: bool = False
    wanted: list[str] = []
    bytes: int = 0
    seconds: float = 0.0
    instances: list[Dataset] = []

    def raise_for_status(self) -> CopyResult:
        """Raise if some instances were not copied; return ``self`` otherwise.

        Raises:
            RetrieveFailed: none was copied.
            PartialFailure: some were, others not.
        """
        if not self.failed:
            return self
        first = self.failed[0]
        if self.copied == 0:
            raise RetrieveFailed(f"none of {len(self.failed)} instances was copied "
                                 f"(first: {first.sop_instance_uid}: {first.reason})")
        raise PartialFailure(f"{len(self.failed)} of {len(self.failed) + self.copied} instances were not copied "
                             f"(first: {first.sop_instance_uid}: {first.reason})")


def plan_at_level(source: Source, query: Query) -> Plan:
    """What a retrieve of ``query`` fetches from ``source``: each match whole at the
    level the source fetches the query's level at (a study, a series, an instance: one
    request each, never expanded into instances). A query that is already a retrieve
    identifier (unique keys only, PS3.4 C.4.2.2.1) is not searched when the source takes
    it as it is (a DIMSE node).

    Raises:
        QueryError, NetworkError, DimseError: the search failed.
    """
    if source.fetches_direct(query):
        return direct_plan(query)
    search = level_search(query, source.fetch_level(query.level))
    answers = source.search(search)
    wholes = wholes_of(search, answers)
    return Plan(wholes=wholes, model=query.model, check=getattr(answers, "check", None))


def plan(source: Source, query: Query, holds_any: Callable[[dict[str, str]], bool] | None = None) -> Plan:
    """What ``query`` matches at ``source``: its matches at the query's level, each
    expanded by an IMAGE-level search on its unique keys into instances — the same for
    every source. With ``holds_any`` (a sink's :meth:`~pacskit.sinks.Sink.holds_any`), a
    match the destination holds nothing of, whose number of instances the source gave
    and that the source fetches whole at that level, is kept whole, not expanded.

    Raises:
        QueryError, NetworkError, DimseError: a search failed.
    """
    def answer(step: PlanStep) -> Any:
        kind, asked = step
        return list(source.search(asked)) if kind == "search" else holds_any(asked)  # type: ignore[misc]

    return answered(planning(query, source.whole_levels, holds_any is not None), answer)


PlanStep = tuple[str, Any]
"""What :func:`planning` asks: (``"search"``, a Query: its matches, as a list) or
(``"holds_any"``, unique keys: whether the destination holds anything under them)."""


def planning(query: Query, whole_levels: frozenset[Level], asks_holdings: bool) -> Generator[PlanStep, Any, Plan]:
    """The plan of :func:`plan`, without I/O: each search and question to the
    destination yielded, its answer sent back (the blocking :func:`plan` and the
    asyncio :func:`pacskit.aio_copy.plan` run them)."""
    keys = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    found = Plan()
    if query.level is Level.IMAGE:
        found.instances = list(dict.fromkeys(_instances((yield "search", _returning(query, keys)))))
        return found
    unique = UNIQUE_KEYS[query.level]
    above = ("StudyInstanceUID",) if query.level is Level.SERIES else ()
    count_key = RELATED_INSTANCES[query.level]
    seen: set[tuple[str, ...]] = set()
    model = InformationModel.PATIENT_ROOT if query.level is Level.PATIENT else InformationModel.STUDY_ROOT
    for match in (yield "search", _returning(query, (*above, unique, count_key))):
        values = {k: str(match.get(k, "") or "") for k in (*above, unique)}
        if not values[unique] or tuple(values.values()) in seen:
            continue
        seen.add(tuple(values.values()))
        count = as_count(match.get(count_key))
        if asks_holdings and count and query.level in whole_levels and not (yield "holds_any", values):
            found.wholes.append(Whole(query.level, values, count))
            continue
        expanded = Query(level=Level.IMAGE, model=model, match=values, return_keys=keys)
        found.instances.extend(_instances((yield "search", expanded)))
    found.instances = list(dict.fromkeys(found.instances))
    return found


def _returning(query: Query, keys: Sequence[str]) -> Query:
    return query.model_copy(update={"return_keys": tuple(dict.fromkeys([*query.return_keys, *keys]))})


def _instances(matches: Iterable[Dataset]) -> list[Planned]:
    found = []
    for match in matches:
        uids = tuple(str(match.get(k, "") or "") for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
        if all(uids):
            found.append((uids[0], uids[1], uids[2]))
    return found


def copy(source: Source, query: Query, sink: Sink | None, *, destination: str, dry_run: bool = False,
         progress: ProgressCallback | None = None, cancellation: Cancellation | None = None,
         transform: Any = None) -> CopyResult:
    """Copy what ``query`` matches at ``source`` into ``sink`` (memory when None),
    leaving out the instances the sink says it holds (:meth:`~pacskit.sinks.Sink.present`).
    With ``dry_run`` nothing is fetched: ``wanted`` lists what would go.

    Raises:
        QueryError, NetworkError, DimseError, OutputError: as the step that fails.
    """
    started = time.monotonic()
    planned = plan(source, query, None if dry_run or sink is None else sink.holds_any)
    held = sink.present(planned.instances) if planned.instances and sink is not None else set()
    result, fetching = outline(source.label, source.skipped, destination, query, planned, held, dry_run)
    if fetching is not None:
        settle(result, source.fetch(fetching, sink, progress, cancellation, transform), cancellation)
    result.seconds = time.monotonic() - started
    return result


def outline(label: str, skipped: int, destination: str, query: Query, planned: Plan, held: set[str],
            dry_run: bool) -> tuple[CopyResult, Plan | None]:
    """The result of a copy before anything is fetched, from its plan and what the
    destination ``held`` of it, and what to fetch: the instances missing (a series
    wholly missing as one request) and the matches kept whole; None when nothing is to
    be (a dry run, or everything held)."""
    wanted = [p for p in planned.instances if p[2] not in held]
    result = CopyResult(source=label, destination=destination, planned=planned.count, present=len(held),
                        skipped_files=skipped, dry_run=dry_run, wanted=[p[2] for p in wanted])
    if dry_run or not (wanted or planned.wholes):
        return result, None
    groups = by_series(planned.instances)
    whole = set() if query.level is Level.IMAGE else {
        serie for (study, serie), sops in by_series(wanted).items() if len(sops) == len(groups[(study, serie)])}
    return result, Plan(wanted, planned.wholes, whole)


def settle(result: CopyResult, fetched: RetrieveResult, cancellation: Cancellation | None) -> None:
    """Count what the fetch of a copy brought into ``result``: copied, already present,
    failed (with the source's reason for what it did not send), cancelled."""
    result.bytes = fetched.bytes
    result.instances = fetched.instances
    result.copied = fetched.written + len(fetched.instances)
    result.present += fetched.skipped
    result.cancelled = cancellation is not None and cancellation.cancelled
    result.failed = [f for f in fetched.local_failures if f.reason != CANCELLED]
    accounted = {f.sop_instance_uid for f in fetched.local_failures}
    reason = fetched.failure_reason or f"{result.source} did not send it"
    if not result.cancelled:
        missing = result.planned - result.present - result.copied - len(fetched.local_failures)
        named = [u for u in fetched.failed_instances if u not in accounted]
        result.failed += [InstanceFailure(sop_instance_uid=u, reason=reason) for u in named[:max(0, missing)]]
        if missing > len(named):
            result.failed += [InstanceFailure(sop_instance_uid="unknown", reason=reason)] * (missing - len(named))


def add_failures(result: CopyResult, failures: list[InstanceFailure]) -> None:
    """Count the instances a sink refused after taking them (a STOW-RS batch), or
    dropped once the copy was cancelled (not copied, not failed either)."""
    result.failed.extend(f for f in failures if f.reason != CANCELLED)
    result.copied = max(0, result.copied - len(failures))


class DimseSource:
    """A DIMSE node: searched by C-FIND, fetched by C-GET or C-MOVE to ourselves."""

    skipped = 0
    whole_levels = frozenset({Level.STUDY, Level.SERIES})

    def __init__(self, client: Client, node: Node, method: str = "get") -> None:
        self.client = client
        self.node = node
        self.label = node.label
        self.method = method

    def search(self, query: Query) -> Iterator[Dataset]:
        return self.client.source_search(self.node, query)

    def fetch_level(self, level: Level) -> Level:
        return level

    def fetches_direct(self, query: Query) -> bool:
        return is_direct(query)

    def fetch(self, plan: Plan, sink: InstanceSink | None, progress: ProgressCallback | None,
              cancellation: Cancellation | None, transform: Any) -> RetrieveResult:
        if sink is not None:
            sink.prepare()
        result = retrieve_requests(self.client.settings, self.node, Query(level=Level.SERIES, model=plan.model),
                                   dimse_requests(plan), method=self.method, sink=sink, privacy=self.client.privacy,
                                   progress=progress, cancellation=cancellation, transform=transform)
        return result

    def close(self) -> None:
        pass


def web_whole_levels(wado_uri: bool) -> frozenset[Level]:
    """The levels a DICOMweb source fetches a match of whole: studies and series by
    WADO-RS, none by WADO-URI (instance by instance)."""
    return frozenset() if wado_uri else DimseSource.whole_levels


class WebSource:
    """A DICOMweb server: searched by QIDO-RS, fetched by WADO-RS — or, with ``wado_uri``,
    instance by instance by WADO-URI (PS3.18 9; the plan then lists every instance)."""

    skipped = 0

    def __init__(self, client: Client, web: WebNode, wado_uri: bool = False) -> None:
        self.client = client
        self.web = web
        self.label = web.label
        self.wado_uri = wado_uri
        self.whole_levels = web_whole_levels(wado_uri)
        self._http = client._web_client(web)

    def search(self, query: Query) -> Iterator[Dataset]:
        return self.client.source_search(self.web.url, query)

    def fetch_level(self, level: Level) -> Level:
        return web_fetch_level(level, self.wado_uri)

    def fetches_direct(self, query: Query) -> bool:
        return False

    def fetch(self, plan: Plan, sink: InstanceSink | None, progress: ProgressCallback | None,
              cancellation: Cancellation | None, transform: Any) -> RetrieveResult:
        result = RetrieveResult(method="wado-uri" if self.wado_uri else "wado-rs")
        if sink is not None:
            sink.prepare()
        receiver = Receiver(result, sink, self.client.privacy, progress, plan.expected, cancellation, transform)
        if self.wado_uri:
            self._http.retrieve_instances(wado_uri_instances(plan), receiver)
        else:
            self._http.retrieve_resources(wado_rs_resources(plan), receiver)
        return result

    def close(self) -> None:
        self._http.close()


class LocalSource:
    """The archive (``archive``) or a folder of files, indexed once for the whole copy
    (headers only; files that are not DICOM are passed over and counted).

    Raises:
        ConfigError: the archive's index cannot be opened.
        InputError: the folder holds no DICOM file.
    """

    whole_levels: frozenset[Level] = frozenset()

    def __init__(self, client: Client, name: str) -> None:
        from pacskit.archive.index import Index
        from pacskit.sources import ARCHIVE, index_folder

        self.client = client
        self.label = name
        self.skipped = 0
        self._stack = ExitStack()
        if name == ARCHIVE:
            self.index = Index.open(client.settings.archive.db_url())
            self.root = client.settings.archive.data_dir / "files"
        else:
            scratch = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="pacskit-copy-"))
            self.index = Index.open(f"sqlite:///{scratch}/index.db")
            self.root = Path()
            try:
                self.skipped = index_folder(self.index, Path(name))
            except BaseException:
                self.close()
                raise
        self._stack.callback(self.index.close)

    def search(self, query: Query) -> Iterator[Dataset]:
        privacy: PrivacyPolicy = self.client.privacy
        for match in self.index.find(query, keys=list(query.return_keywords(privacy))):
            yield privacy.scrub_response(match)

    def fetch_level(self, level: Level) -> Level:
        return level

    def fetches_direct(self, query: Query) -> bool:
        return False

    def fetch(self, plan: Plan, sink: InstanceSink | None, progress: ProgressCallback | None,
              cancellation: Cancellation | None, transform: Any) -> RetrieveResult:
        result = RetrieveResult(method="local")
        if sink is not None:
            sink.prepare()
        receiver = Receiver(result, sink, self.client.privacy, progress, plan.expected, cancellation, transform)
        for sop in self._instances(plan):
            if cancellation is not None and cancellation.cancelled:
                break
            stored = self.index.path_of(sop)
            result.requests += 1
            try:
                data = (self.root / stored).read_bytes() if stored is not None else None
            except OSError:
                data = None
            if data is None:
                result.failed += 1
                result.failed_instances.append(sop)
                continue
            if receiver.take(data):
                result.completed += 1
        return result

    def _instances(self, plan: Plan) -> Iterator[str]:
        yield from (sop for _, _, sop in plan.instances)
        for whole in plan.wholes:
            search = Query(level=Level.IMAGE, model=plan.model, match=whole.values)
            yield from (str(m.get("SOPInstanceUID", "")) for m in self.index.find(search, keys=["SOPInstanceUID"]))

    def close(self) -> None:
        self._stack.close()
