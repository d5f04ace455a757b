"""Running a Query as C-FIND requests that any SCP answers correctly.

An SCP may search hierarchically (PS3.4 C.4.1.2.1): below the top level it honours only
the unique keys of the levels above and ignores their other keys, so "the series of
patient P" would come back as every series. Such a query is run in steps: first the level
above with those keys, then the query itself once per match, narrowed by the match's
unique keys. All the requests share one association.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom import Dataset

from pacskit.net.find import FindSession
from pacskit.privacy import PrivacyPolicy
from pacskit.query import LEVEL_KEYS, LEVELS, UNIQUE_KEYS, InformationModel, Level, Query


def upper_keys(query: Query) -> dict[str, str]:
    """The constraining match keys that belong to levels above the query's level."""
    above = LEVELS[: LEVELS.index(query.level)]
    keys = {k for level in above for k in LEVEL_KEYS[level]}
    return {k: v for k, v in query.matching_keys().items() if k in keys}


def hierarchy(query: Query) -> list[Level]:
    """The levels of ``query``'s information model, from the top down to its level."""
    top = Level.PATIENT if query.model is InformationModel.PATIENT_ROOT else Level.STUDY
    return list(LEVELS[LEVELS.index(top): LEVELS.index(query.level) + 1])


def needs_steps(query: Query) -> bool:
    """Whether a hierarchical SCP would ignore some of ``query``'s keys."""
    levels = hierarchy(query)
    unique = {UNIQUE_KEYS[level] for level in levels}
    return len(levels) > 1 and any(k not in unique for k in upper_keys(query))


def run_query(session: FindSession, query: Query, privacy: PrivacyPolicy,
              limit: int | None = None) -> Iterator[Dataset]:
    """Yield the matches of ``query`` (at most ``limit``), in steps when it needs them.

    Raises:
        QueryError, DimseFailure, NetworkTimeout, AssociationAborted: as the requests fail.
    """
    limit = query.limit if limit is None else limit
    if not needs_steps(query):
        yield from session.find(query.to_identifier(privacy), limit)
        return
    upper = upper_keys(query)
    parent_level = LEVELS[LEVELS.index(query.level) - 1]
    parent_query = Query(level=parent_level, model=query.model, match=upper)
    parents = list(run_query(session, parent_query, privacy, limit=None))
    path = [UNIQUE_KEYS[level] for level in hierarchy(query)[:-1]]
    own = {k: v for k, v in query.match.items() if k not in upper}
    remaining = limit
    for parent in parents:
        narrowed = {k: str(parent.get(k, "") or "") for k in path if parent.get(k)}
        child = Query(level=query.level, model=query.model, match={**own, **narrowed},
                      return_keys=query.return_keys)
        for match in session.find(child.to_identifier(privacy), remaining):
            yield match
            if remaining is not None:
                remaining -= 1
        if remaining == 0:
            return
