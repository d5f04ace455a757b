"""Checking a peer's answers against the query they answer (pure).

A PACS may ignore an optional matching key it does not support and return its answers
as if the key were not there (PS3.4 C.2.2.1.3; a QIDO-RS server likewise ignores the
parameters it does not support, PS3.18 8.3): DCMTK's dcmqrscp answers every study to a
query on ModalitiesInStudy or InstitutionName. So every answer is matched again, key by
key, with the PS3.4 C.2.2.2 rules pacskit applies to its own archive
(:func:`pacskit.query.match_value`), and the outcome is counted in an
:class:`~pacskit.models.AnswerCheck`:

* an answer whose returned value fails a key is dropped;
* an answer that returns a key empty or not at all cannot be checked — the PACS may not
  support the key, or the entity may have no value — and is kept, counted as
  unverified: dropping right answers is as wrong as keeping wrong ones;
* ModalitiesInStudy returned empty can still be checked against the Modality of the
  study's series (it is defined as their distinct values, PS3.4 Table C.3-1), which the
  caller looks up with a series-level query.

Person names are matched leniently: PS3.4 C.2.2.2.4 leaves PN wildcard matching to the
implementation, and many PACS match a name on any of its components, so a name passes
when the whole value or any component matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from pydicom import Dataset

from pacskit.models import AnswerCheck
from pacskit.query import Keys, Level, Query, match_tree, match_values, tree_values, vr_of

MODALITIES_IN_STUDY = "ModalitiesInStudy"
_COMPONENT = re.compile(r"[\^=]")

SeriesModalities = Callable[[Dataset], list[str] | None]
"""The Modality values of the series of the study an answer describes; None when they
cannot be known."""


@dataclass(frozen=True)
class Verdict:
    """How one answer compares with the matching keys.

    Attributes:
        failed: keys whose returned value does not match.
        unchecked: keys returned empty or not at all.
    """

    failed: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()


def check_answer(keys: dict[str, str], answer: Dataset, sequences: Keys | None = None) -> Verdict:
    """The :class:`Verdict` on ``answer`` for the constraining matching ``keys``
    (keyword → PS3.4 C.2.2.2 matching value) and the keys inside ``sequences``
    (C.2.2.2.6: one item of the answer's sequence must match them all)."""
    failed, unchecked = [], []
    for keyword, item_keys in (sequences or {}).items():
        if isinstance(item_keys, str):
            continue  # not made by put_key, which gives a sequence the keys of its item
        items = answer.get(keyword) or []
        if not any(has_value(item, k) for item in items for k, v in item_keys.items() if v):
            unchecked.append(keyword)
        elif not match_tree({keyword: item_keys}, answer):
            failed.append(keyword)
    for keyword, pattern in keys.items():
        vr = vr_of(keyword)
        if vr == "SQ":
            continue
        values = values_of(answer, keyword)
        if not values:
            unchecked.append(keyword)
        elif not (match_values(keyword, pattern, values) or vr == "PN" and _component_matches(keyword, pattern, values)):
            failed.append(keyword)
    return Verdict(tuple(failed), tuple(unchecked))


def values_of(answer: Dataset, keyword: str) -> list[str]:
    """The non-empty values of ``keyword`` in ``answer``, as text."""
    value = answer.get(keyword)
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    return [text for text in (str(v).strip() for v in values if v is not None) if text]


def has_value(answer: Dataset, keyword: str) -> bool:
    """Whether ``answer`` holds a non-empty ``keyword``."""
    return bool(values_of(answer, keyword))


def _component_matches(keyword: str, pattern: str, values: list[str]) -> bool:
    components = [part.strip() for value in values for part in _COMPONENT.split(value)]
    return match_values(keyword, pattern, [part for part in components if part])


class AnswerChecker:
    """Checks the answers of one query, one by one, into ``check``.

    Args:
        query: the query the answers answer.
        check: where the outcome is counted (shared by the requests of a query run in
            steps).
        skip: keys not to check (those a step above already checked).
    """

    def __init__(self, query: Query, check: AnswerCheck, skip: Iterable[str] = ()) -> None:
        skipped = set(skip)
        self.keys = {k: v for k, v in query.matching_keys().items() if k not in skipped}
        self.sequences = {k: v for k, v in query.sequences.items() if k not in skipped and any(tree_values(v))}
        self.check = check
        self.by_series = query.level is Level.STUDY and MODALITIES_IN_STUDY in self.keys

    def needs_series(self, answer: Dataset) -> bool:
        """Whether ``answer``'s ModalitiesInStudy must be looked up from its series: it
        has none, and no other key drops it already."""
        if not self.by_series or has_value(answer, MODALITIES_IN_STUDY):
            return False
        others = {k: v for k, v in self.keys.items() if k != MODALITIES_IN_STUDY}
        return not check_answer(others, answer).failed

    def keep(self, answer: Dataset, series_modalities: list[str] | None = None) -> bool:
        """Count ``answer`` and say whether it stays. ``series_modalities``: the Modality
        values of its study's series, when :meth:`needs_series` and they were found; the
        answer is then given them as its ModalitiesInStudy."""
        if series_modalities:
            answer.ModalitiesInStudy = sorted(set(series_modalities))
            self.check.checked_by_series += 1
        verdict = check_answer(self.keys, answer, self.sequences)
        self.check.answers += 1
        if verdict.failed:
            self.check.dropped += 1
            for keyword in verdict.failed:
                self.check.ignored[keyword] = self.check.ignored.get(keyword, 0) + 1
            return False
        if verdict.unchecked:
            self.check.unverified += 1
            for keyword in verdict.unchecked:
                self.check.unreturned[keyword] = self.check.unreturned.get(keyword, 0) + 1
        return True

    def filter(self, answers: Iterable[Dataset], series: SeriesModalities | None = None) -> Iterator[Dataset]:
        """The answers that stay, in order. With ``series``, every answer is read before
        the first is checked (the look-ups may need the connection ``answers`` holds)."""
        if series is not None and self.by_series:
            answers = list(answers)
        for answer in answers:
            modalities = series(answer) if series is not None and self.needs_series(answer) else None
            if self.keep(answer, modalities):
                yield answer
