"""From a Query to what a retrieve fetches, the same for every source and every driver.

A retrieve is identified by unique keys only (PS3.4 C.4.2.2.1). A query that already is a
retrieve identifier (:func:`is_direct`) needs no search on a DIMSE node; any other is
first searched at the level the source fetches it at (:func:`level_search`), and each
match becomes a :class:`Whole` (:func:`wholes_of`): one C-GET, C-MOVE or WADO-RS request
for a study or a series, and IMAGE-level matches grouped into UID lists
(:func:`dimse_requests`), or into WADO-RS resources and WADO-URI instances
(:func:`wado_rs_resources`, :func:`wado_uri_instances`). A copy plans instance by instance instead
(:func:`pacskit.transfer.plan`), into the same :class:`Plan`. Nothing here does I/O: the
blocking client and the asyncio one run the searches these functions describe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pydicom import Dataset

from pacskit.models import AnswerCheck
from pacskit.query import LEVELS, UNIQUE_KEYS, InformationModel, Level, Query

Asked = TypeVar("Asked")
Answer = TypeVar("Answer")
Outcome = TypeVar("Outcome")

RELATED_INSTANCES = {
    Level.PATIENT: "NumberOfPatientRelatedInstances",
    Level.STUDY: "NumberOfStudyRelatedInstances",
    Level.SERIES: "NumberOfSeriesRelatedInstances",
}
UID_LIST_SIZE = 50
"""SOP Instance UIDs in one IMAGE-level retrieve identifier (a UID list, PS3.4 C.2.2.2.2)."""

Planned = tuple[str, str, str]
"""An instance to fetch: Study, Series and SOP Instance UIDs."""


@dataclass(frozen=True)
class RetrieveRequest:
    """One C-GET/C-MOVE identifier, with the number of instances it should bring."""

    identifier: Dataset
    expected: int | None


@dataclass(frozen=True)
class Whole:
    """A match fetched whole at its level: its unique keys (those of the levels above
    too, as the information model wants them) and the number of instances the source
    says it has (None: it did not say, or it was not searched)."""

    level: Level
    values: dict[str, str]
    count: int | None


@dataclass
class Plan:
    """What a source fetches: instances one by one (``whole_series``: the series of
    them wanted whole, fetched as one request), and matches whole, under ``model``;
    ``check`` is how the answers of the search that made the plan compared with the query
    (None: no search, or a local one)."""

    instances: list[Planned] = field(default_factory=list)
    wholes: list[Whole] = field(default_factory=list)
    whole_series: set[str] = field(default_factory=set)
    model: InformationModel = InformationModel.STUDY_ROOT
    check: AnswerCheck | None = None

    @property
    def count(self) -> int:
        return len(self.instances) + sum(w.count or 0 for w in self.wholes)

    @property
    def expected(self) -> int | None:
        """How many instances the plan brings, when every match said."""
        return None if any(w.count is None for w in self.wholes) else self.count


def retrieve_keys(level: Level, model: InformationModel) -> list[str]:
    """The unique keys a retrieve identifier carries at ``level`` under ``model``
    (PS3.4 C.4.2.2.1: those of the level and of each level above it)."""
    top = Level.PATIENT if model is InformationModel.PATIENT_ROOT else Level.STUDY
    return [UNIQUE_KEYS[each] for each in LEVELS[LEVELS.index(top): LEVELS.index(level) + 1]]


def is_direct(query: Query) -> bool:
    """Whether ``query`` is already a valid retrieve identifier (unique keys only)."""
    keys = retrieve_keys(query.level, query.model)
    given = {k: v for k, v in query.match.items() if v}
    return (
        bool(given)
        and set(given) <= set(keys)
        and UNIQUE_KEYS[query.level] in given
        and not any(c in v for v in given.values() for c in "*?")
    )


def direct_plan(query: Query) -> Plan:
    """The plan of a query made of unique keys (:func:`is_direct`): the query itself,
    not searched."""
    keys = retrieve_keys(query.level, query.model)
    return Plan(wholes=[Whole(query.level, {k: query.match.get(k, "") for k in keys}, None)], model=query.model)


def level_search(query: Query, level: Level) -> Query:
    """The search that lists the matches of ``query`` to fetch whole at ``level`` (the
    query's own level, or the one a source fetches it at: studies for a patient on
    DICOMweb, instances for WADO-URI), returning their unique keys and the count of
    their related instances; the query's own return keys are kept at its own level."""
    count_key = RELATED_INSTANCES.get(level)
    needed = (*retrieve_keys(level, query.model), *([count_key] if count_key else []))
    returned = (*query.return_keys, *needed) if level is query.level else needed
    return query.model_copy(update={"level": level, "return_keys": tuple(dict.fromkeys(returned))})


def wholes_of(search: Query, matches: Iterable[Dataset]) -> list[Whole]:
    """One :class:`Whole` per match of :func:`level_search` ``search`` (each once; one
    without its level's unique key is left out)."""
    keys = retrieve_keys(search.level, search.model)
    count_key = RELATED_INSTANCES.get(search.level)
    wholes = []
    seen: set[tuple[str, ...]] = set()
    for match in matches:
        values = {k: str(match.get(k, "") or "") for k in keys}
        if not values[UNIQUE_KEYS[search.level]] or tuple(values.values()) in seen:
            continue
        seen.add(tuple(values.values()))
        wholes.append(Whole(search.level, values, 1 if count_key is None else as_count(match.get(count_key))))
    return wholes


def as_count(value: object) -> int | None:
    """A count of related instances as the peer gave it, or None."""
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def by_series(instances: Sequence[Planned]) -> dict[tuple[str, str], list[str]]:
    """The SOP Instance UIDs of ``instances``, series by series."""
    series: dict[tuple[str, str], list[str]] = {}
    for study, serie, sop in instances:
        series.setdefault((study, serie), []).append(sop)
    return series


def identifier_of(level: Level, values: dict[str, str]) -> Dataset:
    """The retrieve identifier at ``level`` carrying the unique keys ``values`` (PS3.4 C.4.2.2.1)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level.value
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def dimse_requests(plan: Plan) -> list[RetrieveRequest]:
    """The C-GET/C-MOVE identifiers of ``plan`` (PS3.4 C.4.2.2.1): one per match wanted
    whole, one per series wanted whole, and IMAGE-level UID lists of at most
    :data:`UID_LIST_SIZE` instances of one series otherwise."""
    requests = []
    lists: dict[tuple[tuple[str, str], ...], list[tuple[str, int | None]]] = {}
    for whole in plan.wholes:
        if whole.level is not Level.IMAGE:
            requests.append(RetrieveRequest(identifier_of(whole.level, whole.values), whole.count))
            continue
        above = tuple((k, v) for k, v in whole.values.items() if k != "SOPInstanceUID")
        lists.setdefault(above, []).append((whole.values.get("SOPInstanceUID", ""), whole.count))
    for (study, serie), sops in by_series(plan.instances).items():
        if serie in plan.whole_series:
            requests.append(RetrieveRequest(identifier_of(Level.SERIES, {"StudyInstanceUID": study,
                                                                       "SeriesInstanceUID": serie}), len(sops)))
            continue
        above = (("StudyInstanceUID", study), ("SeriesInstanceUID", serie))
        lists.setdefault(above, []).extend((sop, 1) for sop in sops)
    for above, listed in lists.items():
        for start in range(0, len(listed), UID_LIST_SIZE):
            part = listed[start:start + UID_LIST_SIZE]
            counts = [count for _, count in part]
            requests.append(RetrieveRequest(
                identifier_of(Level.IMAGE, {**dict(above), "SOPInstanceUID": "\\".join(sop for sop, _ in part)}),
                None if None in counts else sum(c or 0 for c in counts)))
    return requests


def web_fetch_level(level: Level, wado_uri: bool) -> Level:
    """The level a DICOMweb retrieve fetches a match of ``level`` at: each instance by
    WADO-URI (PS3.18 9), a patient as its studies by WADO-RS (which has no patient
    resource, PS3.18 10.4.1), else the level itself."""
    if wado_uri:
        return Level.IMAGE
    return Level.STUDY if level is Level.PATIENT else level


def wado_rs_resources(plan: Plan) -> list[tuple[str, int | None]]:
    """The WADO-RS resources of ``plan`` (PS3.18 10.4.1), each with the instances it
    should bring: a study, series or instance per match wanted whole, a series per series
    wanted whole, an instance otherwise."""
    paths = (("studies", "StudyInstanceUID"), ("series", "SeriesInstanceUID"), ("instances", "SOPInstanceUID"))
    resources: list[tuple[str, int | None]] = [
        ("/".join(f"{part}/{w.values[key]}" for part, key in paths if key in w.values), w.count) for w in plan.wholes]
    for (study, serie), sops in by_series(plan.instances).items():
        if serie in plan.whole_series:
            resources.append((f"studies/{study}/series/{serie}", len(sops)))
        else:
            resources.extend((f"studies/{study}/series/{serie}/instances/{sop}", 1) for sop in sops)
    return resources


def wado_uri_instances(plan: Plan) -> list[Planned]:
    """The instances of ``plan`` as (study, series, SOP Instance UID), one WADO-URI
    request each (PS3.18 9); a whole of the plan is then one instance."""
    return [*plan.instances, *((w.values.get("StudyInstanceUID", ""), w.values.get("SeriesInstanceUID", ""),
                                w.values.get("SOPInstanceUID", "")) for w in plan.wholes)]


def expected_of(requests: list[RetrieveRequest]) -> int | None:
    """How many instances the requests should bring, when every match said."""
    return None if any(r.expected is None for r in requests) else sum(r.expected or 0 for r in requests)


def answered(steps: Generator[Asked, Answer, Outcome], answer: Callable[[Asked], Answer]) -> Outcome:
    """The outcome of steps made without I/O (:func:`pacskit.transfer.planning`,
    :func:`pacskit.sinks.presence`), each question they yield given ``answer``'s reply."""
    try:
        asked = next(steps)
        while True:
            asked = steps.send(answer(asked))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def answered_async(steps: Generator[Asked, Answer, Outcome],
                         answer: Callable[[Asked], Awaitable[Answer]]) -> Outcome:
    """:func:`answered`, each reply awaited (the asyncio drivers)."""
    try:
        asked = next(steps)
        while True:
            asked = steps.send(await answer(asked))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
