"""A Modality Worklist query, client side: the options of ``pacskit worklist`` made into a
C-FIND identifier (PS3.4 K.6.1.2) (pure)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom import Dataset

from pacskit.errors import QueryError
from pacskit.privacy import DEFAULT_PRIVACY, PrivacyPolicy
from pacskit.query import Keys, key_path, put_key, tree_dataset, tree_values
from pacskit.worklist.model import STEP_RETURN_KEYS, STEP_SEQUENCE, TOP_LEVEL_RETURN_KEYS

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
        given: list[tuple[str, str | None]] = [
            (f"{STEP_SEQUENCE}.ScheduledStationAETitle", station_aet),
            (f"{STEP_SEQUENCE}.Modality", modality),
            (f"{STEP_SEQUENCE}.ScheduledProcedureStepStartDate",
             _TODAY.sub(stamp, date) if date is not None else None),
            ("PatientID", patient_id),
            ("AccessionNumber", accession),
        ]
        for text in keys:
            key, sep, text_value = text.partition("=")
            given.append((key, text_value if sep else ""))
        seen: set[tuple[str, ...]] = set()
        for path, value in given:
            if value is None:
                continue
            names = key_path(path)
            if names in seen and value:
                raise QueryError(f"{'.'.join(names)} is given twice")
            if value:
                seen.add(names)
            put_key(tree, names, value)
        return cls(keys=tree, limit=limit)

    def to_identifier(self, privacy: PrivacyPolicy = DEFAULT_PRIVACY) -> Dataset:
        """The C-FIND request identifier; names left out unless ``privacy`` allows them.

        Raises:
            QueryError: a patient-name attribute is a matching key while names are withheld.
        """
        ds = tree_dataset(self.keys, privacy)
        if any(not v.isascii() for v in tree_values(self.keys)):
            ds.SpecificCharacterSet = "ISO_IR 192"
        return ds


def worklist_request(query: WorklistQuery | None, filters: Mapping[str, Any],
                     privacy: PrivacyPolicy) -> tuple[Dataset, int | None]:
    """The identifier of the worklist C-FIND of ``query`` (or of one built from
    ``filters``, the keyword arguments of :meth:`WorklistQuery.build`) and its limit:
    what :meth:`pacskit.client.Client.iter_worklist` and
    :func:`pacskit.aio_worklist.worklist` send.

    Raises:
        QueryError: an invalid key or value, or a name asked for while names are withheld.
    """
    if query is None:
        query = WorklistQuery.build(**filters)
    return query.to_identifier(privacy), query.limit
