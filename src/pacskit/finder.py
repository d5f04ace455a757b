"""Running a Query as C-FIND requests that any SCP answers correctly.

An SCP may search hierarchically (PS3.4 C.4.1.2.1): below the top level it honours only
the unique keys of the levels above and ignores their other keys, so "the series of
patient P" would come back as every series. Such a query is run in steps: first the level
above with those keys, then the query itself once per match, narrowed by the match's
unique keys. All the requests share one association.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from pydicom import Dataset

from pacskit.answers import AnswerChecker, values_of
from pacskit.errors import DimseFailure
from pacskit.models import AnswerCheck, Answers
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
              limit: int | None = None) -> Answers:
    """The matches of ``query``, in steps when it needs them, every answer checked
    against the query (:mod:`pacskit.answers`): the result's ``check`` says what was
    dropped or kept unverified. After ``limit`` answers (the query's own limit by
    default) the SCP is cancelled; answers dropped then are not replaced.

    Raises:
        QueryError, DimseFailure, NetworkTimeout, AssociationAborted: as the requests fail.
    """
    check = AnswerCheck(level=query.level)
    return Answers(checked_matches(session, query, privacy, check, limit), check)


def checked_matches(session: FindSession, query: Query, privacy: PrivacyPolicy, check: AnswerCheck,
                    limit: int | None = None) -> Iterator[Dataset]:
    """The matches of :func:`run_query`, the outcome of the checks counted in ``check``."""
    limit = query.limit if limit is None else limit
    series = partial(series_modalities, session, query.model, privacy)
    if not needs_steps(query):
        yield from AnswerChecker(query, check).filter(session.find(query.to_identifier(privacy), limit), series)
        return
    parents = run_query(session, parent_query(query), privacy, limit=None)
    found = list(parents)
    check.above = parents.check
    remaining = limit
    for parent in found:
        child = child_query(query, parent)
        for match in AnswerChecker(child, check).filter(session.find(child.to_identifier(privacy), remaining),
                                                        series):
            yield match
            if remaining is not None:
                remaining -= 1
        if remaining == 0:
            return


def parent_query(query: Query) -> Query:
    """The first step of a query in steps: the level above, with the keys of the levels above."""
    parent_level = LEVELS[LEVELS.index(query.level) - 1]
    return Query(level=parent_level, model=query.model, match=upper_keys(query))


def child_query(query: Query, parent: Dataset) -> Query:
    """``query`` without the keys of the levels above, narrowed to the unique keys of
    ``parent``, a match of :func:`parent_query`."""
    upper = upper_keys(query)
    path = [UNIQUE_KEYS[level] for level in hierarchy(query)[:-1]]
    own = {k: v for k, v in query.match.items() if k not in upper}
    narrowed = {k: str(parent.get(k, "") or "") for k in path if parent.get(k)}
    return Query(level=query.level, model=query.model, match={**own, **narrowed},
                 return_keys=query.return_keys, sequences=query.sequences)


def series_query(model: InformationModel, study: Dataset) -> Query | None:
    """The series-level query for the Modality of every series of the study answer
    ``study`` (None: it has no Study Instance UID)."""
    top = Level.PATIENT if model is InformationModel.PATIENT_ROOT else Level.STUDY
    keys = [UNIQUE_KEYS[level] for level in LEVELS[LEVELS.index(top): LEVELS.index(Level.STUDY) + 1]]
    match = {k: values_of(study, k)[0] for k in keys if values_of(study, k)}
    if "StudyInstanceUID" not in match:
        return None
    return Query(level=Level.SERIES, model=model, match=match, return_keys=("Modality",))


def series_modalities(session: FindSession, model: InformationModel, privacy: PrivacyPolicy,
                      study: Dataset) -> list[str] | None:
    """The Modality of every series of the study answer ``study``, by a series-level
    C-FIND on the same association (None: the study has no UID, the SCP refused, or no
    series returned a Modality)."""
    query = series_query(model, study)
    if query is None:
        return None
    try:
        return [m for series in session.find(query.to_identifier(privacy)) for m in values_of(series, "Modality")] or None
    except DimseFailure:
        return None
