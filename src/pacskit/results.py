"""Typed query results: one model per Query/Retrieve level, built from a C-FIND or
QIDO-RS answer (pure).

Each field is the snake_case name of a standard attribute of the level (PS3.4 C.6.1.1,
C.6.2.1) or of the levels above it: dates and times as :class:`~datetime.date` and
:class:`~datetime.time` (PS3.5 6.2, DA and TM), counts and numbers as ``int`` (IS, US),
multi-valued attributes as lists. A value a peer sent malformed is ``None`` in its field
and left as sent in :attr:`LevelResult.dataset`.

The answer itself stays reachable as :attr:`LevelResult.dataset` and
:meth:`LevelResult.to_dicom_json` (PS3.18 F.2); neither is part of
``model_dump_json()``. ``patient_name`` is absent from the JSON when it is ``None``,
which it always is unless the settings allow patient names (:mod:`pacskit.privacy`):
the answers are scrubbed before they become results.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydicom import Dataset

from pacskit.privacy import DEFAULT_PRIVACY, PATIENT_NAME_KEYWORDS, PrivacyPolicy
from pacskit.query import Level, vr_of

_SNAKE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_TM = re.compile(r"^(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?(?:\.(\d{1,6}))?$")
_INTEGER_VRS = {"IS", "US", "UL", "SS", "SL"}

R = TypeVar("R", bound="LevelResult")


def snake_case(keyword: str) -> str:
    """The field name of a DICOM keyword: ``SOPInstanceUID`` → ``sop_instance_uid``."""
    return _SNAKE.sub("_", keyword).lower()


def parse_date(text: str) -> date | None:
    """A DA value (``YYYYMMDD``, or the ACR-NEMA ``YYYY.MM.DD``) as a date; None if
    malformed (PS3.5 6.2)."""
    digits = text.strip().replace(".", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def parse_time(text: str) -> time | None:
    """A TM value (``HH``, ``HHMM``, ``HHMMSS``, ``HHMMSS.FFFFFF``, with or without the
    ACR-NEMA colons) as a time; None if malformed (PS3.5 6.2). A leap second (60) is
    read as 59."""
    match = _TM.match(text.strip())
    if match is None:
        return None
    hour, minute, second, fraction = match.groups()
    try:
        return time(int(hour), int(minute or 0), min(int(second or 0), 59),
                    int((fraction or "0").ljust(6, "0")))
    except ValueError:
        return None


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    return [text for text in (str(v).strip() for v in values if v is not None) if text]


def _integer(text: str) -> int | None:
    try:
        return int(float(text)) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        return None


def field_value(keyword: str, value: Any, *, many: bool) -> Any:
    """The typed value of an element's ``value`` for ``keyword``'s field."""
    texts = _texts(value)
    vr = vr_of(keyword)
    if vr == "DA":
        converted: list[Any] = [parse_date(t) for t in texts]
    elif vr == "TM":
        converted = [parse_time(t) for t in texts]
    elif vr in _INTEGER_VRS:
        converted = [_integer(t) for t in texts]
    else:
        converted = texts
    if many:
        return [v for v in converted if v is not None]
    return converted[0] if converted else None


class LevelResult(BaseModel):
    """The typed part of one answer, and the answer (:attr:`dataset`)."""

    model_config = ConfigDict(frozen=True)

    level: ClassVar[Level]
    keywords: ClassVar[dict[str, str]]
    """field name → DICOM keyword, for every field of the level."""

    _dataset: Dataset = PrivateAttr(default_factory=Dataset)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.keywords = {name: _keyword_of(name) for name in cls.model_fields}

    @classmethod
    def from_dataset(cls: type[R], dataset: Dataset, privacy: PrivacyPolicy = DEFAULT_PRIVACY) -> R:
        """The result for one C-FIND response identifier or QIDO-RS answer; its patient
        name only if ``privacy`` allows names."""
        values = {}
        for name, keyword in cls.keywords.items():
            if keyword in PATIENT_NAME_KEYWORDS and privacy.withholds_names:
                continue
            many = _is_list(cls.model_fields[name].annotation)
            value = field_value(keyword, dataset.get(keyword), many=many)
            if value is not None:
                values[name] = value
        result = cls(**values)
        result._dataset = dataset
        return result

    @property
    def dataset(self) -> Dataset:
        """The answer as the peer sent it (names withheld unless allowed)."""
        return self._dataset

    def to_dicom_json(self) -> dict[str, Any]:
        """The answer in the DICOM JSON Model (PS3.18 F.2)."""
        return self._dataset.to_json_dict()

    @classmethod
    def return_keys(cls) -> tuple[str, ...]:
        """The keywords this result reads, to be asked as return keys."""
        return tuple(cls.keywords.values())


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list or str(annotation).startswith("list[")


_KEYWORDS = {
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "IssuerOfPatientID",
    "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries",
    "NumberOfPatientRelatedInstances", "StudyInstanceUID", "StudyDate", "StudyTime",
    "AccessionNumber", "StudyID", "StudyDescription", "ReferringPhysicianName",
    "ModalitiesInStudy", "SOPClassesInStudy", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances", "SeriesInstanceUID", "Modality", "SeriesNumber",
    "SeriesDescription", "SeriesDate", "SeriesTime", "BodyPartExamined", "ProtocolName",
    "NumberOfSeriesRelatedInstances", "SOPInstanceUID", "SOPClassUID", "InstanceNumber",
    "ContentDate", "ContentTime", "AcquisitionDate", "AcquisitionTime", "ImageType",
    "NumberOfFrames", "Rows", "Columns",
}
_BY_FIELD = {snake_case(k): k for k in _KEYWORDS}


def _keyword_of(name: str) -> str:
    return _BY_FIELD[name]


_NAME = Field(default=None, exclude_if=lambda value: value is None)


class PatientResult(LevelResult):
    """A PATIENT level answer (PS3.4 C.6.1.1.2)."""

    level: ClassVar[Level] = Level.PATIENT

    patient_id: str | None = None
    patient_name: str | None = _NAME
    patient_birth_date: date | None = None
    patient_sex: str | None = None
    issuer_of_patient_id: str | None = None
    number_of_patient_related_studies: int | None = None
    number_of_patient_related_series: int | None = None
    number_of_patient_related_instances: int | None = None


class StudyResult(LevelResult):
    """A STUDY level answer (PS3.4 C.6.2.1.2), with the patient it belongs to."""

    level: ClassVar[Level] = Level.STUDY

    study_instance_uid: str = ""
    patient_id: str | None = None
    patient_name: str | None = _NAME
    patient_birth_date: date | None = None
    patient_sex: str | None = None
    study_date: date | None = None
    study_time: time | None = None
    accession_number: str | None = None
    study_id: str | None = None
    study_description: str | None = None
    referring_physician_name: str | None = None
    modalities_in_study: list[str] = []
    sop_classes_in_study: list[str] = []
    number_of_study_related_series: int | None = None
    number_of_study_related_instances: int | None = None


class SeriesResult(LevelResult):
    """A SERIES level answer (PS3.4 C.6.2.1.3)."""

    level: ClassVar[Level] = Level.SERIES

    series_instance_uid: str = ""
    study_instance_uid: str | None = None
    patient_id: str | None = None
    modality: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    series_date: date | None = None
    series_time: time | None = None
    body_part_examined: str | None = None
    protocol_name: str | None = None
    number_of_series_related_instances: int | None = None


class InstanceResult(LevelResult):
    """An IMAGE (composite object instance) level answer (PS3.4 C.6.2.1.4)."""

    level: ClassVar[Level] = Level.IMAGE

    sop_instance_uid: str = ""
    sop_class_uid: str | None = None
    series_instance_uid: str | None = None
    study_instance_uid: str | None = None
    patient_id: str | None = None
    instance_number: int | None = None
    content_date: date | None = None
    content_time: time | None = None
    acquisition_date: date | None = None
    acquisition_time: time | None = None
    image_type: list[str] = []
    number_of_frames: int | None = None
    rows: int | None = None
    columns: int | None = None


RESULTS: dict[Level, type[LevelResult]] = {
    Level.PATIENT: PatientResult,
    Level.STUDY: StudyResult,
    Level.SERIES: SeriesResult,
    Level.IMAGE: InstanceResult,
}
