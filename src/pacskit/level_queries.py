"""Typed queries: one model per Query/Retrieve level, with the level's matching keys as
snake_case fields, each turned into the general :class:`~pacskit.query.Query` (pure).

Values follow PS3.4 C.2.2.2: a string is sent as it is (``"Smith*"``,
``"20240101-20240131"``); a :class:`~datetime.date` or :class:`~datetime.time` is a
single value; a ``(start, end)`` pair is a range (either end may be ``None``); a list
of UIDs is a list match. Every key the level's result model reads
(:mod:`pacskit.results`) is asked as a return key, patient names only when allowed.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from pacskit.errors import QueryError
from pacskit.query import InformationModel, Level, Query
from pacskit.results import (
    InstanceResult,
    LevelResult,
    PatientResult,
    SeriesResult,
    StudyResult,
)

DateMatch = str | date | tuple[date | None, date | None]
TimeMatch = str | time | tuple[time | None, time | None]
UidMatch = str | list[str]

_RENAMED = {"modality": "ModalitiesInStudy"}
"""Fields of :class:`StudyQuery` whose keyword is not their name's."""


def _text(value: Any) -> str:
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if isinstance(value, time):
        return value.strftime("%H%M%S") + (f".{value.microsecond:06d}" if value.microsecond else "")
    if isinstance(value, tuple):
        start, end = value
        return f"{_text(start) if start is not None else ''}-{_text(end) if end is not None else ''}"
    if isinstance(value, list):
        return "\\".join(str(v) for v in value)
    return str(value)


class LevelQuery(BaseModel):
    """The fields every typed query has.

    Attributes:
        limit: stop after this many matches (C-CANCEL for the rest).
        return_keys: more keywords to return, beyond those of the level's result.

    Raises:
        QueryError: on construction or :meth:`to_query`, a value is malformed or not
            allowed for its key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: ClassVar[Level]
    result: ClassVar[type[LevelResult]]
    renamed: ClassVar[dict[str, str]] = {}

    limit: int | None = None
    return_keys: tuple[str, ...] = ()

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise QueryError(f"invalid {type(self).__name__} {where}: {first['msg']}") from None

    def matching(self) -> dict[str, str]:
        """keyword → matching value, for the fields that were given."""
        match = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in ("limit", "return_keys") or value is None:
                continue
            keyword = self.renamed.get(name) or self.result.keywords[name]
            match[keyword] = _text(value)
        return match

    def to_query(self) -> Query:
        """The general query (PS3.4 C.4.1.1.3).

        Raises:
            QueryError: a value is malformed for its key.
        """
        model = InformationModel.PATIENT_ROOT if self.level is Level.PATIENT else InformationModel.STUDY_ROOT
        keys = tuple(k for k in (*self.result.return_keys(), *self.return_keys))
        return Query(level=self.level, model=model, match=self.matching(), return_keys=keys,
                     limit=self.limit)


class PatientQuery(LevelQuery):
    """A PATIENT level query, patient root (PS3.4 C.6.1.1.2)."""

    level: ClassVar[Level] = Level.PATIENT
    result: ClassVar[type[LevelResult]] = PatientResult

    patient_id: str | None = None
    patient_name: str | None = None
    patient_birth_date: DateMatch | None = None
    patient_sex: str | None = None
    issuer_of_patient_id: str | None = None


class StudyQuery(LevelQuery):
    """A STUDY level query, study root (PS3.4 C.6.2.1.2). ``modality`` matches
    ModalitiesInStudy."""

    level: ClassVar[Level] = Level.STUDY
    result: ClassVar[type[LevelResult]] = StudyResult
    renamed: ClassVar[dict[str, str]] = _RENAMED

    patient_id: str | None = None
    patient_name: str | None = None
    patient_birth_date: DateMatch | None = None
    study_instance_uid: UidMatch | None = None
    study_date: DateMatch | None = None
    study_time: TimeMatch | None = None
    accession_number: str | None = None
    study_id: str | None = None
    study_description: str | None = None
    referring_physician_name: str | None = None
    modality: str | None = None


class SeriesQuery(LevelQuery):
    """A SERIES level query, study root (PS3.4 C.6.2.1.3)."""

    level: ClassVar[Level] = Level.SERIES
    result: ClassVar[type[LevelResult]] = SeriesResult

    study_instance_uid: UidMatch | None = None
    series_instance_uid: UidMatch | None = None
    patient_id: str | None = None
    modality: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    series_date: DateMatch | None = None
    body_part_examined: str | None = None
    protocol_name: str | None = None


class InstanceQuery(LevelQuery):
    """An IMAGE level query, study root (PS3.4 C.6.2.1.4)."""

    level: ClassVar[Level] = Level.IMAGE
    result: ClassVar[type[LevelResult]] = InstanceResult

    study_instance_uid: UidMatch | None = None
    series_instance_uid: UidMatch | None = None
    sop_instance_uid: UidMatch | None = None
    sop_class_uid: UidMatch | None = None
    patient_id: str | None = None
    instance_number: int | None = None
    content_date: DateMatch | None = None


QUERIES: dict[Level, type[LevelQuery]] = {
    Level.PATIENT: PatientQuery,
    Level.STUDY: StudyQuery,
    Level.SERIES: SeriesQuery,
    Level.IMAGE: InstanceQuery,
}
