"""QIDO-RS, Search Transaction (PS3.18 10.6): query parameters → :class:`Query`, answered
by the archive's index with the same PS3.4 C.2.2.2 matching as C-FIND.

Parameters (PS3.18 8.3.4): ``{attributeID}={value}`` (keyword or tag, ``00100020``),
``includefield`` (repeatable, comma-separated, or ``all``), ``limit``, ``offset`` and
``fuzzymatching``. A list of UIDs is separated by commas (PS3.18 8.3.4.1,
``uid-list-match``) or, as in a C-FIND identifier, by backslashes: neither character can
occur in a UID, so both are read as PS3.4 C.2.2.2.2 List of UID Matching. Fuzzy matching is not supported: ``fuzzymatching=true`` is accepted
and answered by literal matching with a Warning header, as PS3.18 8.3.4.1 allows.
Attributes the index does not hold are not returned, even when asked for.

Two extensions, named as dcm4chee-arc names them: ``orderby`` (comma-separated keywords
or tags, each prefixed with ``-`` for descending: ``orderby=-StudyDate,-StudyTime``)
sorts the matches before ``offset`` and ``limit`` apply (:mod:`pacskit.archive.ordering`),
and ``{resource}/count`` (``/studies/count``, ``/studies/{study}/series/count``, …)
answers ``{"count": N}``, the number of matches of the same search without paging.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from pydicom import Dataset

from pacskit.archive.ordering import check_order
from pacskit.errors import QueryError
from pacskit.query import (
    LEVEL_KEYS,
    LEVELS,
    UNIQUE_KEYS,
    Level,
    Query,
    allowed_keys,
    keyword_of,
)

if TYPE_CHECKING:
    from pacskit.archive.index import Index

STUDY_DEFAULTS = (
    "StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability", "ModalitiesInStudy",
    "ReferringPhysicianName", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyID", "StudyDescription", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances", "RetrieveURL",
)
SERIES_DEFAULTS = (
    "Modality", "SeriesDescription", "SeriesInstanceUID", "SeriesNumber",
    "NumberOfSeriesRelatedInstances", "PerformedProcedureStepStartDate", "RetrieveURL",
)
INSTANCE_DEFAULTS = (
    "SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "InstanceNumber", "Rows", "Columns",
    "BitsAllocated", "NumberOfFrames", "RetrieveURL",
)
"""The attributes returned by default (PS3.18 Table 10.6.3-3 to -5), those the index holds."""

DEFAULTS = {Level.STUDY: STUDY_DEFAULTS, Level.SERIES: SERIES_DEFAULTS, Level.IMAGE: INSTANCE_DEFAULTS}
COMPUTED = frozenset({"InstanceAvailability", "RetrieveURL"})
FUZZY_WARNING = ('299 pacskit: "The fuzzymatching parameter is not supported. '
                 'Only literal matching has been performed."')
TRUNCATED_WARNING = ('299 pacskit: "The number of results exceeded the maximum supported by the '
                     'server. Additional results can be requested."')
RESERVED = frozenset({"includefield", "limit", "offset", "fuzzymatching", "orderby"})


@dataclass(frozen=True)
class Search:
    """A parsed Search request.

    Attributes:
        query: what to match, at which level.
        keys: the attributes to return (computed ones included).
        offset: how many matches to skip.
        limit: the most matches to return (None: the archive's own cap).
        warnings: Warning header values for the response.
        order: (keyword, descending) pairs to sort the matches by, most significant first.
    """

    query: Query
    keys: tuple[str, ...]
    offset: int = 0
    limit: int | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    order: tuple[tuple[str, bool], ...] = ()


def parse_search(level: Level, params: Iterable[tuple[str, str]], fixed: dict[str, str],
                 parents: Iterable[Level] = ()) -> Search:
    """The Search a request asks for: ``params`` are its query parameters in order,
    ``fixed`` the UIDs of its path (``/studies/{study}/series``), ``parents`` the levels
    above ``level`` whose default attributes are also returned (PS3.18 10.6.3.3: a
    search for series outside a study returns its study's attributes too).

    Raises:
        QueryError: an unknown attribute, a key not of the level, a malformed value,
            limit, offset or orderby, or a parameter given twice.
    """
    match: dict[str, str] = {}
    include: list[str] = []
    order: list[tuple[str, bool]] = []
    offset, limit, warnings = 0, None, []
    for name, value in params:
        lowered = name.lower()
        if lowered == "orderby":
            order.extend(_order(value))
        elif lowered == "includefield":
            include.extend(_include(level, value))
        elif lowered in ("limit", "offset"):
            number = _count(name, value)
            if lowered == "limit":
                limit = number
            else:
                offset = number
        elif lowered == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise QueryError(f"fuzzymatching must be true or false, not {value!r}")
            if value.lower() == "true":
                warnings.append(FUZZY_WARNING)
        else:
            keyword = keyword_of(name)
            if keyword in match:
                raise QueryError(f"{keyword} is given twice")
            match[keyword] = value
    if limit == 0:
        raise QueryError("limit must be at least 1")
    for keyword, uid in fixed.items():
        match[keyword] = uid
    query = Query(level=level, match=match)
    check_order(level, order)
    defaults = [key for lvl in (*parents, level) for key in DEFAULTS[lvl]]
    uniques = [UNIQUE_KEYS[lvl] for lvl in LEVELS[1:LEVELS.index(level) + 1]]
    keys = dict.fromkeys([*defaults, *uniques, *match, *include])
    allowed = allowed_keys(level, query.model) | COMPUTED
    return Search(query, tuple(k for k in keys if k in allowed), offset, limit, tuple(warnings), tuple(order))


def run_search(index: Index, search: Search, base_url: str, cap: int) -> tuple[list[dict[str, Any]], bool]:
    """The DICOM JSON (PS3.18 F.2) of each match, at most ``cap`` of them whatever
    ``limit`` asks for, and whether more matches than were returned exist beyond the cap
    (the caller then warns that additional results can be requested, PS3.18 8.3.4.4)."""
    asked = [k for k in search.keys if k not in COMPUTED]
    wanted = min(search.limit, cap) if search.limit is not None else cap
    found = index.find(search.query, limit=wanted + 1, offset=search.offset, keys=asked, order=search.order)
    with closing(found):
        results = [_response(ds, search, base_url) for ds in islice(found, wanted + 1)]
    more = len(results) > wanted
    truncated = more and (search.limit is None or search.limit > cap)
    return results[:wanted], truncated


def count_matches(index: Index, search: Search) -> int:
    """How many matches ``search`` has, paging aside (the ``/count`` resources)."""
    return index.count_matches(search.query)


def retrieve_url(base_url: str, study: str, series: str | None = None, sop: str | None = None) -> str:
    """The WADO-RS URL of a study, series or instance (PS3.18 10.4.1)."""
    url = f"{base_url}/studies/{study}"
    if series:
        url += f"/series/{series}"
        if sop:
            url += f"/instances/{sop}"
    return url


def _response(ds: Dataset, search: Search, base_url: str) -> dict[str, Any]:
    if "QueryRetrieveLevel" in ds:
        del ds.QueryRetrieveLevel
    if "InstanceAvailability" in search.keys:
        ds.InstanceAvailability = "ONLINE"
    study = ds.get("StudyInstanceUID")
    if study and "RetrieveURL" in search.keys:
        level = search.query.level
        ds.RetrieveURL = retrieve_url(base_url, str(study),
                                      str(ds.get("SeriesInstanceUID", "")) if level is not Level.STUDY else None,
                                      str(ds.get("SOPInstanceUID", "")) if level is Level.IMAGE else None)
    return ds.to_json_dict()


def _include(level: Level, value: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if any(item.lower() == "all" for item in items):
        return [key for lvl in LEVELS[:LEVELS.index(level) + 1] for key in LEVEL_KEYS[lvl]]
    return [keyword_of(item) for item in items]


def _order(value: str) -> list[tuple[str, bool]]:
    items = [item.strip() for item in value.split(",")]
    if not all(item.lstrip("-") for item in items):
        raise QueryError(f"orderby must list attributes, not {value!r}")
    try:
        return [(keyword_of(item.lstrip("-")), item.startswith("-")) for item in items]
    except QueryError as exc:
        raise QueryError(f"orderby: {exc}") from None


def _count(name: str, value: str) -> int:
    if not value.isdigit():
        raise QueryError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)
