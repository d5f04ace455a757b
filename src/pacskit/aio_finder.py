"""A Query as C-FIND requests on asyncio: :func:`pacskit.finder.checked_matches` on an
:class:`~pacskit.net.aio_find.AsyncFindSession`, with the same steps
(:func:`~pacskit.finder.parent_query`, :func:`~pacskit.finder.child_query`) and the same
checks of every answer (:class:`~pacskit.answers.AnswerChecker`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from pydicom import Dataset

from pacskit.answers import AnswerChecker, values_of
from pacskit.errors import DimseFailure
from pacskit.finder import child_query, needs_steps, parent_query, series_query
from pacskit.models import AnswerCheck
from pacskit.net.aio_find import AsyncFindSession
from pacskit.privacy import PrivacyPolicy
from pacskit.query import Query


async def checked_matches(session: AsyncFindSession, query: Query, privacy: PrivacyPolicy, check: AnswerCheck,
                          limit: int | None = None) -> AsyncGenerator[Dataset, None]:
    """The matches of ``query``, in steps when it needs them, each checked; as
    :func:`pacskit.finder.checked_matches`."""
    limit = query.limit if limit is None else limit
    if not needs_steps(query):
        async with aclosing(_filtered(session, query, privacy, check, limit)) as matches:
            async for match in matches:
                yield match
        return
    upper = parent_query(query)
    above = AnswerCheck(level=upper.level)
    async with aclosing(checked_matches(session, upper, privacy, above, None)) as found:
        parents = [parent async for parent in found]
    check.above = above
    remaining = limit
    for parent in parents:
        async with aclosing(_filtered(session, child_query(query, parent), privacy, check, remaining)) as matches:
            async for match in matches:
                yield match
                if remaining is not None:
                    remaining -= 1
        if remaining == 0:
            return


async def _filtered(session: AsyncFindSession, query: Query, privacy: PrivacyPolicy, check: AnswerCheck,
                    limit: int | None) -> AsyncGenerator[Dataset, None]:
    """The answers of one C-FIND that pass :class:`AnswerChecker` (every answer read
    first when ModalitiesInStudy is to be looked up from the series)."""
    checker = AnswerChecker(query, check)
    answers = session.find(query.to_identifier(privacy), limit)
    try:
        if checker.by_series:
            for answer in [answer async for answer in answers]:
                modalities = await _series_modalities(session, query, privacy, answer) \
                    if checker.needs_series(answer) else None
                if checker.keep(answer, modalities):
                    yield answer
            return
        async for answer in answers:
            if checker.keep(answer):
                yield answer
    finally:
        await answers.aclose()


async def _series_modalities(session: AsyncFindSession, query: Query, privacy: PrivacyPolicy,
                             study: Dataset) -> list[str] | None:
    """As :func:`pacskit.finder.series_modalities`."""
    series = series_query(query.model, study)
    if series is None:
        return None
    try:
        async with aclosing(session.find(series.to_identifier(privacy))) as answers:
            found = [m async for answer in answers for m in values_of(answer, "Modality")]
    except DimseFailure:
        return None
    return found or None
