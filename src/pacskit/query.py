"""The query model: what to find, at which level, in which information model (pure).

A :class:`Query` becomes a C-FIND identifier (:meth:`Query.to_identifier`) and a predicate
over a dataset (:meth:`Query.matches`) that follows the matching rules of PS3.4 C.2.2.2:
single value, list of UIDs, universal, wildcard (``*``, ``?``) and range (DA, TM, DT)
matching. The same rules apply on every source, so the same table of cases is run against
each of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum
from functools import cache
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.sequence import Sequence

from pacskit.errors import QueryError
from pacskit.privacy import DEFAULT_PRIVACY, PATIENT_NAME_KEYWORDS, PrivacyPolicy


class Level(str, Enum):
    """Query/Retrieve Level (0008,0052), PS3.4 C.6."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"

    @classmethod
    def parse(cls, value: str | Level) -> Level:
        """``patient``, ``study``, ``series``, ``image`` (or ``instance``), any case.

        Raises:
            QueryError: not a level.
        """
        if isinstance(value, Level):
            return value
        text = str(value).strip().upper()
        if text == "INSTANCE":
            text = "IMAGE"
        try:
            return cls(text)
        except ValueError:
            raise QueryError(f"unknown level {value!r}: use patient, study, series or image") from None


class InformationModel(str, Enum):
    """Query/Retrieve Information Model, PS3.4 C.6.1 (patient root) and C.6.2 (study root)."""

    PATIENT_ROOT = "patient"
    STUDY_ROOT = "study"

    @classmethod
    def parse(cls, value: str | InformationModel) -> InformationModel:
        """``patient`` or ``study`` (``-root`` suffix allowed), any case.

        Raises:
            QueryError: not a model.
        """
        if isinstance(value, InformationModel):
            return value
        text = str(value).strip().lower().removesuffix("-root").removesuffix("_root")
        try:
            return cls(text)
        except ValueError:
            raise QueryError(f"unknown information model {value!r}: use patient or study") from None


LEVELS = (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE)

UNIQUE_KEYS = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}

LEVEL_KEYS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: (
        "PatientID", "PatientName", "PatientBirthDate", "PatientBirthTime", "PatientSex",
        "IssuerOfPatientID", "OtherPatientIDsSequence", "OtherPatientNames",
        "PatientBirthName", "PatientMotherBirthName", "EthnicGroup", "PatientComments",
        "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances",
    ),
    Level.STUDY: (
        "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
        "StudyDescription", "ReferringPhysicianName", "NameOfPhysiciansReadingStudy",
        "ModalitiesInStudy", "SOPClassesInStudy", "AdmittingDiagnosesDescription",
        "PatientAge", "PatientSize", "PatientWeight", "InstitutionName",
        "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
    ),
    Level.SERIES: (
        "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "SeriesDate",
        "SeriesTime", "BodyPartExamined", "ProtocolName", "PerformedProcedureStepStartDate",
        "Laterality", "NumberOfSeriesRelatedInstances",
    ),
    Level.IMAGE: (
        "SOPInstanceUID", "SOPClassUID", "InstanceNumber", "ContentDate", "ContentTime",
        "AcquisitionDate", "AcquisitionTime", "AcquisitionDateTime", "AcquisitionNumber", "ImageType",
        "NumberOfFrames", "Rows", "Columns", "BitsAllocated", "TransferSyntaxUID",
    ),
}

DEFAULT_RETURN_KEYS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                    "NumberOfPatientRelatedStudies"),
    Level.STUDY: ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                  "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
                  "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                  "NumberOfStudyRelatedInstances"),
    Level.SERIES: ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
                   "SeriesNumber", "SeriesDescription", "SeriesDate",
                   "NumberOfSeriesRelatedInstances"),
    Level.IMAGE: ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                  "SOPClassUID", "InstanceNumber"),
}

_RANGE_VRS = {"DA", "TM", "DT"}
_NO_WILDCARD_VRS = {"DA", "TM", "DT", "UI", "SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN",
                    "US", "SS", "UL", "SL", "FL", "FD", "AT", "UV", "SV"}
_LIST_KEYWORDS = {"ModalitiesInStudy"}
_NOT_KEYS = {"QueryRetrieveLevel"}
_OPTIONAL_EVERYWHERE = {"SpecificCharacterSet", "TimezoneOffsetFromUTC"}
_DATE = re.compile(r"^\d{8}$")
_TIME = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")
_DATETIME = re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_ITEM = re.compile(r"\[(\d+)\]$")

Keys = dict[str, Union[str, "Keys"]]
"""keyword → matching value ("" for a return key), or the keys of a sequence's item."""


def keyword_of(key: str) -> str:
    """The DICOM keyword for ``key``: a keyword, or a tag as ``00100020``/``(0010,0020)``.

    Raises:
        QueryError: unknown keyword or tag.
    """
    text = key.strip()
    hex_digits = re.sub(r"[(),\s]", "", text)
    if re.fullmatch(r"[0-9A-Fa-f]{8}", hex_digits):
        keyword = keyword_for_tag(int(hex_digits, 16))
        if not keyword:
            raise QueryError(f"unknown tag {key!r}")
        return keyword
    if tag_for_keyword(text) is None:
        raise QueryError(f"unknown keyword {key!r}")
    return text


def allowed_keys(level: Level, model: InformationModel) -> set[str]:
    """Keys that may appear in a query at ``level``: its own and those of the levels above."""
    return {key for lvl in LEVELS[: LEVELS.index(level) + 1] for key in LEVEL_KEYS[lvl]}


def lower_level_keys(level: Level) -> set[str]:
    """Standard keys of the levels below ``level``: a query at ``level`` cannot carry them
    (PS3.4 C.4.1.2.1)."""
    here = {key for lvl in LEVELS[: LEVELS.index(level) + 1] for key in LEVEL_KEYS[lvl]}
    return {key for lvl in LEVELS[LEVELS.index(level) + 1:] for key in LEVEL_KEYS[lvl]} - here


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:  # keywords are checked before; pydicom raised TypeError on None too
        raise TypeError(f"unknown keyword {keyword!r}")
    return tag


@cache
def vr_of(keyword: str) -> str:
    """The value representation of ``keyword`` (the first one, when it has several)."""
    return dictionary_VR(_tag(keyword)).split(" ")[0]


def normal_value(keyword: str, value: str) -> str:
    """``value`` as a matching value of ``keyword``, stripped; a list of UIDs given with
    commas (PS3.18 8.3.4.1, as QIDO-RS writes it) or backslashes becomes the
    backslash-separated list of PS3.4 C.2.2.2.2. A comma cannot occur in a UID."""
    value = value.strip()
    if value and vr_of(keyword) == "UI":
        return "\\".join(uid.strip() for uid in re.split(r"[\\,]", value))
    return value


class Query(BaseModel):
    """A C-FIND style query.

    Attributes:
        level: the Query/Retrieve Level.
        model: patient root or study root.
        match: keyword → matching value, in DICOM string form (``20240101-20240131``,
            ``CT``, ``Smith*``, ``1.2.3\\1.2.4``). An empty value is a return key.
        return_keys: more keywords to return, with no matching value.
        sequences: sequence keyword → the keys of its one item (PS3.4 C.2.2.2.6), nested
            as :data:`Keys`.
        limit: stop after this many matches (C-CANCEL).

    Raises:
        QueryError: on construction, when a key is unknown or not allowed at the level, a
            value is malformed for its VR, or the level does not exist in the model.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: Level = Level.STUDY
    model: InformationModel = InformationModel.STUDY_ROOT
    match: dict[str, str] = Field(default_factory=dict)
    return_keys: tuple[str, ...] = ()
    sequences: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            cause = first.get("ctx", {}).get("error")
            if isinstance(cause, QueryError):
                raise cause from None
            where = ".".join(str(p) for p in first["loc"])
            raise QueryError(f"invalid query {where}: {first['msg']}") from None

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Level:
        return Level.parse(value)

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> InformationModel:
        return InformationModel.parse(value)

    @field_validator("match", mode="before")
    @classmethod
    def _match(cls, value: Any) -> dict[str, str]:
        match = {}
        for key, text in dict(value).items():
            keyword = keyword_of(key)
            match[keyword] = normal_value(keyword, "" if text is None else str(text))
        return match

    @field_validator("return_keys", mode="before")
    @classmethod
    def _return_keys(cls, value: Any) -> tuple[str, ...]:
        return tuple(dict.fromkeys(keyword_of(k) for k in value))

    @model_validator(mode="after")
    def _check(self) -> Query:
        if self.model is InformationModel.STUDY_ROOT and self.level is Level.PATIENT:
            raise QueryError("the study-root model has no PATIENT level: use the patient-root model")
        if self.limit is not None and self.limit < 1:
            raise QueryError(f"limit must be at least 1, not {self.limit}")
        below = lower_level_keys(self.level)
        for keyword in (*self.match, *self.return_keys, *self.sequences):
            if keyword in below:
                raise QueryError(f"{keyword} is not a key of the {self.level.value} level")
            if keyword in _NOT_KEYS:
                raise QueryError(f"{keyword} cannot be a key: pacskit sets it")
        for keyword, value in self.match.items():
            _check_value(keyword, value)
        return self

    @classmethod
    def build(
        cls,
        level: Level | str = Level.STUDY,
        model: InformationModel | str | None = None,
        *,
        patient_id: str | None = None,
        study_uid: str | None = None,
        series_uid: str | None = None,
        sop_instance_uid: str | None = None,
        accession: str | None = None,
        date: str | None = None,
        modality: str | None = None,
        description: str | None = None,
        keys: list[str] | tuple[str, ...] = (),
        limit: int | None = None,
    ) -> Query:
        """A query from the convenient filters of the command line.

        ``model`` defaults to patient root at the PATIENT level and study root elsewhere;
        ``date`` matches StudyDate; ``modality`` matches ModalitiesInStudy at the STUDY
        level and Modality below; ``description`` matches StudyDescription at the STUDY
        level and SeriesDescription below; ``keys`` are ``Keyword=value`` (match) or
        ``Keyword`` (return key) strings, or a path into a sequence's item
        (``ProcedureCodeSequence.CodeValue=XYZ``, findscu's ``(0008,1032)[0].CodeValue``). A UID key given more than once (by a filter and
        ``keys``, or in several ``keys``) matches any of the UIDs; any other key given
        twice with different values is an error.

        Raises:
            QueryError: a filter is invalid for the level.
        """
        lvl = Level.parse(level)
        if model is None:
            model = InformationModel.PATIENT_ROOT if lvl is Level.PATIENT else InformationModel.STUDY_ROOT
        at_study = lvl in (Level.PATIENT, Level.STUDY)
        match: dict[str, str] = {}
        for keyword, value in (
            ("PatientID", patient_id),
            ("StudyInstanceUID", study_uid),
            ("SeriesInstanceUID", series_uid),
            ("SOPInstanceUID", sop_instance_uid),
            ("AccessionNumber", accession),
            ("StudyDate", date),
            ("ModalitiesInStudy" if at_study else "Modality", modality),
            ("StudyDescription" if at_study else "SeriesDescription", description),
        ):
            if value is not None:
                match[keyword] = value
        return_keys: list[str] = []
        sequences: Keys = {}
        for item in keys:
            name, sep, value = item.partition("=")
            if "." in name or "[" in name:
                put_key(sequences, key_path(name), value if sep else "")
                continue
            keyword = keyword_of(name)
            if sep and vr_of(keyword) == "SQ":
                put_key(sequences, (keyword,), value)
                continue
            if not sep:
                return_keys.append(keyword)
            elif keyword not in match:
                match[keyword] = value
            elif vr_of(keyword) == "UI":
                match[keyword] = f"{match[keyword]}\\{value}"
            elif normal_value(keyword, match[keyword]) != normal_value(keyword, value):
                raise QueryError(f"{keyword} is given twice: {match[keyword]!r} and {value!r}")
        return cls(level=lvl, model=model, match=match, return_keys=tuple(return_keys),
                   sequences=sequences, limit=limit)

    @classmethod
    def from_identifier(cls, identifier: Dataset, model: InformationModel | str) -> Query:
        """The query a C-FIND, C-GET or C-MOVE request identifier asks (PS3.4 C.4.1.1.3),
        as an SCP reads it: keys this level does not support are left out (PS3.4
        C.4.1.1.3.2 lets an SCP ignore them), a key with a value matches, an empty one
        is returned.

        Raises:
            QueryError: no or an unknown Query/Retrieve Level, or a malformed value.
        """
        level = Level.parse(str(identifier.get("QueryRetrieveLevel", "") or ""))
        model = InformationModel.parse(model)
        allowed = allowed_keys(level, model)
        match: dict[str, str] = {}
        for element in identifier:
            keyword = element.keyword
            if keyword not in allowed:
                continue
            value = element.value
            if element.VR == "SQ" or value is None:
                match[keyword] = ""
            elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
                match[keyword] = "\\".join(str(v) for v in value)
            else:
                match[keyword] = str(value)
        return cls(level=level, model=model, match=match)

    def matching_keys(self) -> dict[str, str]:
        """The match keys that actually constrain (non-empty, not a lone ``*``)."""
        return {k: v for k, v in self.match.items() if v not in ("", "*")}

    def missing_hierarchy_keys(self) -> list[str]:
        """Unique keys of the levels above that a strictly hierarchical SCP requires
        (PS3.4 C.4.1.2.1) and that this query does not give."""
        top = Level.PATIENT if self.model is InformationModel.PATIENT_ROOT else Level.STUDY
        above = LEVELS[LEVELS.index(top): LEVELS.index(self.level)]
        return [UNIQUE_KEYS[lvl] for lvl in above if not self.match.get(UNIQUE_KEYS[lvl])]

    def return_keywords(self, privacy: PrivacyPolicy = DEFAULT_PRIVACY) -> list[str]:
        """Every keyword the identifier carries, in order, without withheld names."""
        keys = [*DEFAULT_RETURN_KEYS[self.level], *self.match, *self.return_keys]
        return privacy.filter_return_keys(list(dict.fromkeys(keys)))

    def nonstandard_keys(self) -> list[str]:
        """Keys of this query that are not standard keys of its level or those above
        (PS3.4 C.6.1.1 and C.6.2.1 tables): sent all the same, but a PACS may ignore them."""
        allowed = allowed_keys(self.level, self.model) | _OPTIONAL_EVERYWHERE
        return [k for k in dict.fromkeys((*self.match, *self.return_keys, *self.sequences)) if k not in allowed]

    def to_identifier(self, privacy: PrivacyPolicy = DEFAULT_PRIVACY) -> Dataset:
        """The C-FIND request identifier (PS3.4 C.4.1.1.3).

        Raises:
            QueryError: a patient-name attribute is a match key while names are withheld.
        """
        if privacy.withholds_names:
            named = [k for k in PATIENT_NAME_KEYWORDS if self.match.get(k)]
            if named:
                raise QueryError(
                    f"matching on {named[0]} needs patient names: set allow_patient_names to opt in"
                )
        ds = Dataset()
        if any(not v.isascii() for v in (*self.match.values(), *tree_values(self.sequences))):
            ds.SpecificCharacterSet = "ISO_IR 192"
        ds.QueryRetrieveLevel = self.level.value
        for keyword in self.return_keywords(privacy):
            if keyword == "SpecificCharacterSet" and "SpecificCharacterSet" in ds and not self.match.get(keyword):
                continue
            if keyword in self.sequences:
                continue
            vr = vr_of(keyword)
            value = self.match.get(keyword, "")
            ds.add_new(_tag(keyword), vr, [] if vr == "SQ" else (value or None))
        ds.update(tree_dataset(self.sequences, privacy))
        return ds

    def matches(self, dataset: Dataset) -> bool:
        """Whether ``dataset`` matches every match key (PS3.4 C.2.2.2), those inside
        sequences included (C.2.2.2.6)."""
        return (all(match_value(k, v, dataset) for k, v in self.match.items())
                and match_tree(self.sequences, dataset))


def key_path(text: str) -> tuple[str, ...]:
    """The keywords of a dotted path into sequences (``ProcedureCodeSequence.CodeValue``,
    or findscu's ``(0008,1032)[0].(0008,0100)``): each but the last a sequence.

    Raises:
        QueryError: an unknown keyword, a step through what is not a sequence, or an item
            other than the first (a query's sequence has one item, PS3.4 C.2.2.2.6).
    """
    names = []
    for part in text.strip().split("."):
        item = _ITEM.search(part)
        if item:
            if item.group(1) != "0":
                raise QueryError(f"a query sequence has one item, [0]: {text!r} (PS3.4 C.2.2.2.6)")
            part = part[:item.start()]
        names.append(keyword_of(part))
    for name in names[:-1]:
        if vr_of(name) != "SQ":
            raise QueryError(f"{name} is not a sequence: {text!r}")
    return tuple(names)


def put_key(tree: Keys, names: tuple[str, ...], value: str) -> None:
    """Set the key at the path ``names`` of ``tree`` to ``value`` ("" to return it).

    Raises:
        QueryError: a value for a sequence itself, or a value malformed for its VR.
    """
    node = tree
    for name in names[:-1]:
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        node = child
    last = names[-1]
    if vr_of(last) == "SQ":
        if value:
            raise QueryError(f"{last} is a sequence: give keys inside it ({last}.Keyword=value)")
        node.setdefault(last, {})
        return
    value = normal_value(last, value)
    check_value(last, value)
    node[last] = value


def tree_values(tree: Keys) -> Iterable[str]:
    """Every matching value of ``tree``, nested ones included."""
    for value in tree.values():
        if isinstance(value, dict):
            yield from tree_values(value)
        else:
            yield value


def tree_paths(tree: Keys, prefix: str = "") -> Iterable[tuple[str, str]]:
    """Each leaf of ``tree`` as its dotted path (``ProcedureCodeSequence.CodeValue``, the
    attribute path of QIDO-RS, PS3.18 8.3.4.1) and its value."""
    for keyword, value in tree.items():
        if isinstance(value, dict):
            yield from tree_paths(value, f"{prefix}{keyword}.") if value else [(f"{prefix}{keyword}", "")]
        else:
            yield f"{prefix}{keyword}", value


def tree_dataset(tree: Keys, privacy: PrivacyPolicy) -> Dataset:
    """``tree`` as identifier elements, a sequence with its one item; names left out unless
    ``privacy`` allows them.

    Raises:
        QueryError: a patient-name attribute is a matching key while names are withheld.
    """
    ds = Dataset()
    for keyword, value in tree.items():
        if keyword in PATIENT_NAME_KEYWORDS and privacy.withholds_names:
            if value:
                raise QueryError(f"matching on {keyword} needs patient names: set allow_patient_names to opt in")
            continue
        tag = _tag(keyword)
        if isinstance(value, dict):
            ds.add_new(tag, "SQ", Sequence([tree_dataset(value, privacy)]))
        else:
            ds.add_new(tag, vr_of(keyword), value or None)
    return ds


def match_tree(tree: Keys, dataset: Dataset) -> bool:
    """Whether ``dataset`` matches every key of ``tree``; a sequence matches when one of
    its items matches every key of the query's item (PS3.4 C.2.2.2.6), or when the query's
    item has no matching value (universal)."""
    for keyword, value in tree.items():
        if isinstance(value, dict):
            if not any(tree_values(value)):
                continue
            items = dataset.get(keyword) or []
            if not any(match_tree(value, item) for item in items):
                return False
        elif not match_value(keyword, value, dataset):
            return False
    return True


def check_value(keyword: str, value: str) -> None:
    """Refuse a matching value that is malformed for ``keyword``'s VR (PS3.4 C.2.2.2):
    a list where only UIDs may be listed, a wildcard where none is allowed, a malformed
    UID, date, time or range.

    Raises:
        QueryError: the value and why it is refused.
    """
    _check_value(keyword, value)


def range_bound(vr: str, text: str, *, low: bool) -> str:
    """A comparable form of a DA, TM or DT value as the low or the high bound of a
    range (PS3.4 C.2.2.2.5): the missing trailing components are the smallest or the
    largest they can be."""
    return _bound(vr, text, low=low)


def _check_value(keyword: str, value: str) -> None:
    if value == "":
        return
    vr = vr_of(keyword)
    if "\\" in value and vr != "UI" and keyword not in _LIST_KEYWORDS:
        raise QueryError(f"{keyword}: a list of values is only allowed for UIDs")
    if vr not in ("PN", "LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE", "AS", "IS", "DS") and any(
        c in value for c in "*?"
    ) and value != "*":
        raise QueryError(f"{keyword}: wildcards are not allowed for {vr} values")
    if vr == "UI":
        for uid in value.split("\\"):
            if len(uid) > 64 or not _UID.match(uid):
                raise QueryError(f"{keyword}: {uid!r} is not a UID")
    elif vr in _RANGE_VRS and value != "*":
        pattern = {"DA": _DATE, "TM": _TIME, "DT": _DATETIME}[vr]
        start, sep, end = value.partition("-") if vr != "DT" else _split_dt(value)
        if sep and not start and not end:
            raise QueryError(f"{keyword}: {value!r} is an empty range")
        for part in (start, end):
            if part and not pattern.match(part.replace(":", "") if vr == "TM" else part):
                raise QueryError(f"{keyword}: {value!r} is not a valid {vr} value or range")
        if start and end and _bound(vr, start, low=True) > _bound(vr, end, low=False):
            raise QueryError(f"{keyword}: range {value!r} starts after it ends")


_DT_RANGE = re.compile(r"^(?P<start>\d[\d.]*(?:[+-]\d{4})?)?-(?P<end>\d[\d.]*(?:[+-]\d{4})?)?$")


def _split_dt(value: str) -> tuple[str, str, str]:
    match = _DT_RANGE.match(value)
    if match is None:
        return value, "", ""
    return match["start"] or "", "-", match["end"] or ""


def _bound(vr: str, text: str, *, low: bool) -> str:
    """A fixed-width comparable form of a DA/TM/DT value, as the low or high bound."""
    if vr == "DA":
        return text
    if vr == "TM":
        text = text.replace(":", "")
        whole, _, fraction = text.partition(".")
        if low:
            return whole.ljust(6, "0") + "." + fraction.ljust(6, "0")
        return whole + "595959"[len(whole):] + "." + (fraction.ljust(6, "0") if fraction else "999999")
    text = re.sub(r"[+-]\d{4}$", "", text)
    whole, _, fraction = text.partition(".")
    if low:
        return whole.ljust(14, "0") + "." + fraction.ljust(6, "0")
    filler = "99991231235959"
    return whole + filler[len(whole):] + "." + (fraction.ljust(6, "0") if fraction else "999999")


def _values(element_value: Any) -> list[str]:
    if element_value is None:
        return []
    if isinstance(element_value, (list, tuple)) or type(element_value).__name__ == "MultiValue":
        return [str(v).strip() for v in element_value if v is not None]
    return [str(element_value).strip()]


def match_value(keyword: str, pattern: str, dataset: Dataset) -> bool:
    """Whether ``dataset``'s ``keyword`` matches ``pattern`` by the rules of PS3.4 C.2.2.2.

    An empty pattern or a lone ``*`` is universal matching (matches even an absent
    attribute). PN values match case-insensitively (a pacskit choice, as most archives
    do); everything else is case-sensitive.
    """
    if pattern in ("", "*"):
        return True
    return match_values(keyword, pattern, [v for v in _values(dataset.get(keyword)) if v])


def match_values(keyword: str, pattern: str, values: list[str]) -> bool:
    """Whether any of ``values`` (stripped, non-empty) of ``keyword`` matches ``pattern``,
    as :func:`match_value`."""
    if pattern in ("", "*"):
        return True
    if not values:
        return False
    vr = vr_of(keyword)
    if vr == "UI":
        wanted = set(pattern.split("\\"))
        return any(v in wanted for v in values)
    if vr in _RANGE_VRS:
        return any(_in_range(vr, pattern, v) for v in values)
    alternatives = pattern.split("\\") if keyword in _LIST_KEYWORDS else [pattern]
    flags = re.IGNORECASE if vr == "PN" else 0
    for alternative in alternatives:
        regex = re.compile(_wildcard_regex(alternative), flags)
        if any(regex.fullmatch(v) for v in values):
            return True
    return False


def _wildcard_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def _in_range(vr: str, pattern: str, value: str) -> bool:
    start, sep, end = pattern.partition("-") if vr != "DT" else _split_dt(pattern)
    if not sep:
        start = end = pattern
    low = _bound(vr, value, low=True)
    if start and low < _bound(vr, start, low=True):
        return False
    return not (end and low > _bound(vr, end, low=False))
