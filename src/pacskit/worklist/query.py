"""A Modality Worklist query, client side: the options of ``pacskit worklist`` made into a
C-FIND identifier (PS3.4 K.6.1.2) (pure)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Union

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.sequence import Sequence

from pacskit.errors import QueryError
from pacskit.privacy import DEFAULT_PRIVACY, PATIENT_NAME_KEYWORDS, PrivacyPolicy
from pacskit.query import check_value, keyword_of, normal_value, vr_of
from pacskit.worklist.model import STEP_RETURN_KEYS, STEP_SEQUENCE, TOP_LEVEL_RETURN_KEYS

Keys = dict[str, Union[str, "Keys"]]
"""keyword → matching value ("" for a return key), or the keys of a sequence's item."""

_TODAY = re.compile(r"today", re.IGNORECASE)


@dataclass(frozen=True)
class WorklistQuery:
    """What to ask a worklist SCP.

    Attributes:
        keys: keyword → matching value, or → the keys of the one item of a sequence;
            always with the Scheduled Procedure Step Sequence.
        limit: stop after this many matches (C-CANCEL).
    """

    keys: Keys = field(default_factory=dict)
    limit: int | None = None

    @classmethod
    def build(cls, *, station_aet: str | None = None, modality: str | None = None,
              date: str | None = None, patient_id: str | None = None, accession: str | None = None,
              keys: Iterable[str] = (), limit: int | None = None,
              today: dt.date | None = None) -> WorklistQuery:
        """A query from the options of the command line: ``station_aet``, ``modality``
        and ``date`` (a date, a range such as ``20261201-20261205``, ``today``) are keys of
        the scheduled step; ``keys`` are ``Keyword=value`` or ``Keyword`` strings, a dotted
        path for a key inside a sequence (``ScheduledProcedureStepSequence.ScheduledStationName=CT1``).

        Raises:
            QueryError: an unknown keyword, a malformed value, a key given twice.
        """
        if limit is not None and limit < 1:
            raise QueryError(f"limit must be at least 1, not {limit}")
        tree: Keys = {keyword: "" for keyword in TOP_LEVEL_RETURN_KEYS}
        step: Keys = {keyword: "" for keyword in STEP_RETURN_KEYS}
        tree[STEP_SEQUENCE] = step
        stamp = (today or dt.date.today()).strftime("%Y%m%d")
        given = [
            (f"{STEP_SEQUENCE}.ScheduledStationAETitle", station_aet),
            (f"{STEP_SEQUENCE}.Modality", modality),
            (f"{STEP_SEQUENCE}.ScheduledProcedureStepStartDate",
             _TODAY.sub(stamp, date) if date is not None else None),
            ("PatientID", patient_id),
            ("AccessionNumber", accession),
        ]
        for text in keys:
            path, sep, value = text.partition("=")
            given.append((path, value if sep else ""))
        seen: set[tuple[str, ...]] = set()
        for path, value in given:
            if value is None:
                continue
            names = _path(path)
            if names in seen and value:
                raise QueryError(f"{'.'.join(names)} is given twice")
            if value:
                seen.add(names)
            _put(tree, names, value)
        return cls(keys=tree, limit=limit)

    def to_identifier(self, privacy: PrivacyPolicy = DEFAULT_PRIVACY) -> Dataset:
        """The C-FIND request identifier; names left out unless ``privacy`` allows them.

        Raises:
            QueryError: a patient-name attribute is a matching key while names are withheld.
        """
        ds = _dataset(self.keys, privacy)
        if any(not v.isascii() for v in _values(self.keys)):
            ds.SpecificCharacterSet = "ISO_IR 192"
        return ds


def _path(text: str) -> tuple[str, ...]:
    names = tuple(keyword_of(part) for part in text.strip().split("."))
    for name in names[:-1]:
        if vr_of(name) != "SQ":
            raise QueryError(f"{name} is not a sequence: {text!r}")
    return names


def _put(tree: Keys, names: tuple[str, ...], value: str) -> None:
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


def _values(tree: Keys) -> Iterable[str]:
    for value in tree.values():
        if isinstance(value, dict):
            yield from _values(value)
        else:
            yield value


def _dataset(tree: Keys, privacy: PrivacyPolicy) -> Dataset:
    ds = Dataset()
    for keyword, value in tree.items():
        if keyword in PATIENT_NAME_KEYWORDS and privacy.withholds_names:
            if value:
                raise QueryError(f"matching on {keyword} needs patient names: set allow_patient_names to opt in")
            continue
        tag = tag_for_keyword(keyword)
        if isinstance(value, dict):
            ds.add_new(tag, "SQ", Sequence([_dataset(value, privacy)]))
        else:
            ds.add_new(tag, vr_of(keyword), value or None)
    return ds
