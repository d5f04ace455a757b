"""The archive's Modality Worklist: items kept in the index database, and the C-FIND of
the Modality Worklist Information Model answered from it (PS3.4 Annex K).

SQL narrows the candidates on the indexed columns (never excluding a true match) and
leaves out the items whose status is final; every candidate is then matched with
:func:`pacskit.worklist.matching.match`, the rules of PS3.4 K.2.2 and C.2.2.2. No file
is read to answer a query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydicom import Dataset
from pydicom.charset import python_encoding
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pacskit.archive.index import Index
from pacskit.archive.schema import WorklistItem
from pacskit.archive.worklist_columns import key_columns, narrowed, narrowing_of
from pacskit.errors import InputError
from pacskit.net.identifier import encode_identifier
from pacskit.transfer_syntax import TransferSyntax
from pacskit.worklist.matching import Matcher, Parts, element_of, response_of, values_of
from pacskit.worklist.model import STEP_SEQUENCE, ItemStatus
from pacskit.worklist.records import EncodedItem, encode_parts, texts_of

STATUS_KEYWORD = "ScheduledProcedureStepStatus"
PARSED_ITEMS = 4096
UTF8 = "ISO_IR 192"


class DuplicateItem(InputError):
    """An item whose step (Study Instance UID, Requested Procedure ID, Scheduled
    Procedure Step ID) is already on the worklist."""


class StatusChangeRefused(InputError):
    """A status an item cannot move to from its own (see :meth:`ItemStatus.can_become`)."""


@dataclass(frozen=True)
class StoredItem:
    """One item of the worklist.

    Attributes:
        uid: the UID pacskit names it by (:func:`pacskit.worklist.items.item_uid`).
        status: where its step stands.
        dataset: the item, its Scheduled Procedure Step Status set from ``status``.
        created_at: when it was added (UTC).
    """

    uid: str
    status: ItemStatus
    dataset: Dataset
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """``{"uid", "status", "created", "item"}``, the item in DICOM JSON (PS3.18 F.2)."""
        return {"uid": self.uid, "status": self.status.value,
                "created": self.created_at.isoformat() + "Z", "item": self.dataset.to_json_dict()}


class Worklist:
    """The worklist items of one index."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def add(self, item: Dataset, uid: str, *, status: ItemStatus = ItemStatus.SCHEDULED,
            replace: bool = False) -> StoredItem:
        """Put a checked item (:func:`pacskit.worklist.items.checked`) on the worklist.

        Raises:
            DuplicateItem: its step is already there and ``replace`` is off.
        """
        now = _now()
        stored = _stored_copy(item)
        row = {
            "uid": uid, "status": status.value, **key_columns(item),
            "attributes": json.dumps(stored.to_json_dict()), "created_at": now, "updated_at": now,
        }
        try:
            with self.index.transaction() as conn:
                if replace:
                    conn.execute(delete(WorklistItem).where(or_(
                        WorklistItem.uid == uid,
                        (WorklistItem.study_uid == row["study_uid"])
                        & (WorklistItem.requested_procedure_id == row["requested_procedure_id"])
                        & (WorklistItem.step_id == row["step_id"]))))
                conn.execute(insert(WorklistItem).values(**row))
        except IntegrityError:
            raise DuplicateItem(
                f"the step {row['step_id']!r} of requested procedure {row['requested_procedure_id']!r} "
                f"in study {row['study_uid']} is already on the worklist as {uid}") from None
        return StoredItem(uid, status, _with_status(stored, status), now)

    def get(self, uid: str) -> StoredItem | None:
        """The item named ``uid``, if it is on the worklist."""
        with self.index.engine.connect() as conn:
            row = conn.execute(_SELECT.where(WorklistItem.uid == uid)).first()
        return _item(row) if row is not None else None

    def items(self, status: ItemStatus | None = None) -> list[StoredItem]:
        """Every item (or those in ``status``), by scheduled date and time."""
        statement = _SELECT.order_by(WorklistItem.start_date, WorklistItem.start_time, WorklistItem.id)
        if status is not None:
            statement = statement.where(WorklistItem.status == status.value)
        with self.index.engine.connect() as conn:
            return [_item(row) for row in conn.execute(statement)]

    def remove(self, uid: str) -> bool:
        """Take an item off the worklist; whether it was there."""
        with self.index.transaction() as conn:
            return bool(conn.execute(delete(WorklistItem).where(WorklistItem.uid == uid)).rowcount)

    def set_status(self, uid: str, status: ItemStatus) -> StoredItem | None:
        """Move an item to ``status``; None if there is no such item.

        Raises:
            StatusChangeRefused: the item cannot go from its status to ``status``.
        """
        with self.index.transaction() as conn:
            row = conn.execute(select(WorklistItem.status).where(WorklistItem.uid == uid)).first()
            if row is None:
                return None
            current = ItemStatus(row.status)
            if current is not status and not current.can_become(status):
                raise StatusChangeRefused(f"item {uid} is {current.value}: it cannot become {status.value}")
            conn.execute(update(WorklistItem).where(WorklistItem.uid == uid)
                         .values(status=status.value, updated_at=_now()))
        return self.get(uid)

    def find(self, identifier: Dataset, *, station: str | None = None,
             limit: int | None = None) -> Iterator[Dataset]:
        """The C-FIND response identifiers for a checked identifier
        (:func:`pacskit.worklist.matching.check_identifier`), by scheduled date and time:
        items in a status that is not final, scheduled for ``station`` when given (the
        calling AE title, as ``serve`` may be told to use it), at most ``limit``. Each
        response carries the item's Specific Character Set when it holds text, UTF-8 when
        that character set cannot encode it."""
        return (answer.dataset() for answer in self.answers(identifier, station=station, limit=limit))

    def answers(self, identifier: Dataset, *, station: str | None = None,
                limit: int | None = None) -> Iterator[Answer]:
        """The responses of :meth:`find`, each encoded on demand in the syntax of the
        presentation context (:meth:`Answer.encoded`), as the SCP sends them."""
        statement = narrowed(select(WorklistItem.status, WorklistItem.attributes)
                             .where(WorklistItem.status.in_([s.value for s in ItemStatus.answered()])),
                             narrowing_of(identifier, station))
        sent = 0
        with self.index.engine.connect() as conn:
            rows = conn.execute(statement).all()
        matcher = Matcher(identifier)
        for row in rows:
            record = _parsed(row.attributes, row.status)
            if station is not None and not _scheduled_for(record.dataset, station):
                continue
            parts = matcher.parts(record)
            if parts is None:
                continue
            yield Answer(parts, record)
            sent += 1
            if limit is not None and sent >= limit:
                return


class Answer:
    """One C-FIND response of the worklist: the parts of the item that answer
    (:meth:`pacskit.worklist.matching.Matcher.parts`), with the Specific Character Set
    the response carries (:func:`character_set_for`)."""

    __slots__ = ("parts", "record", "character_set")

    def __init__(self, parts: Parts, record: EncodedItem) -> None:
        self.parts = parts
        self.record = record
        self.character_set = character_set_for(*texts_of(parts), record.names)

    def dataset(self) -> Dataset:
        """The response identifier as a dataset."""
        response = response_of(self.parts)
        if self.character_set is not None:
            response.SpecificCharacterSet = self.character_set
        return response

    def encoded(self, transfer_syntax: TransferSyntax) -> bytes:
        """The response identifier in ``transfer_syntax``: joined from the item's
        encoded elements when the syntax is Little Endian and not deflated and the
        response keeps its item's character set, else encoded by pydicom.

        Raises:
            ValueError: it cannot be encoded in that syntax.
        """
        if (transfer_syntax.is_little_endian and not transfer_syntax.is_deflated
                and self.record.simple and _keeps_character_set(self.character_set, self.record.names)):
            encoded = encode_parts(self.parts, transfer_syntax.is_implicit_VR, self.character_set)
            if encoded is not None:
                return encoded
        return encode_identifier(self.dataset(), transfer_syntax)


@lru_cache(maxsize=PARSED_ITEMS)
def _parsed(attributes: str, status: str) -> EncodedItem:
    """An item as stored, with its status, parsed and made ready to encode once while
    it is among the :data:`PARSED_ITEMS` used last (a modality asks the same worklist
    over and over). Matching only reads it."""
    return EncodedItem(_with_status(Dataset.from_json(json.loads(attributes)), ItemStatus(status)))


_SELECT = select(WorklistItem.uid, WorklistItem.status, WorklistItem.attributes, WorklistItem.created_at)


def _item(row: Any) -> StoredItem:
    status = ItemStatus(row.status)
    dataset = _with_status(Dataset.from_json(json.loads(row.attributes)), status)
    return StoredItem(str(row.uid), status, dataset, row.created_at)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _stored_copy(item: Dataset) -> Dataset:
    """The item as stored: without its status, which is kept beside it."""
    stored = Dataset.from_json(item.to_json_dict())
    step = stored[STEP_SEQUENCE].value[0]
    if STATUS_KEYWORD in step:
        del step[STATUS_KEYWORD]
    return stored


def _with_status(item: Dataset, status: ItemStatus) -> Dataset:
    steps = element_of(item, STEP_SEQUENCE)
    if steps is not None and steps.value:
        setattr(steps.value[0], STATUS_KEYWORD, status.value)
    return item


def _scheduled_for(record: Dataset, station: str) -> bool:
    steps = element_of(record, STEP_SEQUENCE)
    return any(station in values_of(element_of(step, "ScheduledStationAETitle"))
               for step in (steps.value if steps is not None else []))


def character_set_for(has_text: bool, texts: list[str], names: list[str]) -> str | list[str] | None:
    """The Specific Character Set of a response whose text elements (``has_text``) hold
    ``texts``, from an item in the character set ``names``: none when it holds no text
    (or only ASCII from an item that names none), the item's when it encodes every text,
    else UTF-8."""
    if not has_text or (not names and all(t.isascii() for t in texts)):
        return None
    if names and _encodes(names, texts):
        return names if len(names) > 1 else names[0]
    return UTF8


def _keeps_character_set(character_set: str | list[str] | None, names: list[str]) -> bool:
    """Whether a response in ``character_set`` is written in its item's (``names``),
    as its item's elements are encoded."""
    return character_set is None or character_set == (names if len(names) > 1 else names[0] if names else None)


def _encodes(names: list[str], texts: list[str]) -> bool:
    if len(names) != 1:
        return all(t.isascii() for t in texts)
    codec = python_encoding.get(names[0])
    if codec is None:
        return False
    try:
        for text in texts:
            text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True
