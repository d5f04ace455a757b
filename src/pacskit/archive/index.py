"""The archive's index: what is stored where, answering C-FIND without opening a file.

One engine for the life of the archive, SQLite (WAL) by default or PostgreSQL (psycopg
3). Matching follows PS3.4 C.2.2.2 exactly as :meth:`pacskit.query.Query.matches` does:
SQL narrows the candidates on the indexed columns (never excluding a true match), and
every candidate is then checked with ``Query.matches`` — so the archive answers the
same rule table as every other source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydicom import Dataset, config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from sqlalchemy import (
    Engine,
    Select,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import aliased

from pacskit.archive.ingest import InstanceConflict
from pacskit.archive.ordering import Order, order_clauses
from pacskit.archive.schema import (
    PATH_INDEX,
    SCHEMA_VERSION,
    STUDY_DATE_TIME_INDEX,
    Base,
    Instance,
    Patient,
    SchemaVersion,
    Series,
    Study,
    WorklistItem,
)
from pacskit.archive.uids import canonical_uid
from pacskit.archive.worklist_columns import key_columns
from pacskit.encoded import plain_json, plain_text
from pacskit.errors import ConfigError
from pacskit.query import LEVEL_KEYS, UNIQUE_KEYS, Level, Query

COMPUTED_KEYS = frozenset({
    "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances",
    "ModalitiesInStudy", "SOPClassesInStudy", "TransferSyntaxUID",
})
ADD_ATTEMPTS = 8
STREAM_ROWS = 500

LOG = logging.getLogger("pacskit.archive")


@dataclass(frozen=True)
class AddResult:
    """What :meth:`Index.add` did.

    Attributes:
        existed: the SOP Instance UID was already indexed.
        path: the indexed path of the instance now.
        replaced_path: with the ``overwrite`` policy, the path the old row pointed to.
    """

    existed: bool
    path: str
    replaced_path: str | None = None


@dataclass(frozen=True)
class StoredInstance:
    """One indexed instance: what a C-GET or C-MOVE sends."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    path: str
    size: int
    crc32: int | None = None
    """The CRC-32 of the file as it was written (None: indexed before schema version 4)."""


@dataclass(frozen=True)
class RemovedInstance:
    """An instance :meth:`Index.remove_under` dropped, and the path its row pointed at."""

    series_instance_uid: str
    sop_instance_uid: str
    path: str


class Index:
    """The index database (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._write_turn: AbstractContextManager[Any] = threading.Lock() if self.sqlite else nullcontext()
        self._writer: Connection | None = None
        self._cursors = _PageCursors()

    @classmethod
    def open(cls, url: str) -> Index:
        """Open (and on first use create) the index at ``url``: ``sqlite:///path`` or
        ``postgresql://user@host/db``.

        Raises:
            ConfigError: the database cannot be reached, or was made by a newer pacskit.
        """
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        try:
            engine = _engine(url)
            Base.metadata.create_all(engine)
            with engine.begin() as conn:
                found = conn.scalar(select(func.max(SchemaVersion.version)))
                if found is None:
                    conn.execute(insert(SchemaVersion).values(version=SCHEMA_VERSION))
                elif found > SCHEMA_VERSION:
                    raise ConfigError(f"the index at {engine.url!r} has schema version {found}; "
                                      f"this pacskit knows up to {SCHEMA_VERSION}: upgrade pacskit")
                elif found < SCHEMA_VERSION:
                    _migrate(conn, found)
        except SQLAlchemyError as exc:
            raise ConfigError(f"cannot open the index {url!r}: {_first_line(exc)}") from None
        return cls(engine)

    def close(self) -> None:
        """Release every connection."""
        with self._write_turn:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()

    def path_of(self, sop_instance_uid: str) -> str | None:
        """The stored path of an instance, if it is indexed."""
        with self._connection() as conn:
            row = _Raw(conn).one(_FIND_INSTANCE, {"uid": sop_instance_uid})
            return str(row[1]) if row is not None else None

    def instance(self, sop_instance_uid: str) -> StoredInstance | None:
        """The indexed instance of that SOP Instance UID, with its file's CRC-32."""
        with self._connection() as conn:
            row = _Raw(conn).one(_FIND_STORED, {"uid": sop_instance_uid})
            return StoredInstance(*row) if row is not None else None

    def count(self) -> int:
        """How many instances are indexed."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Instance)) or 0)

    def add(self, header: Dataset, *, path: str, size: int, transfer_syntax: str,
            policy: str = "keep", crc32: int | None = None) -> AddResult:
        """Index one instance in one transaction, creating its patient, study and series
        as needed. A SOP Instance UID already indexed is kept (``keep``) or replaced
        (``overwrite``): never two rows, never two rows for one path. Safe from several
        threads and processes: the database's unique constraints decide every race
        (``INSERT ... ON CONFLICT DO NOTHING``), and the study's ModalitiesInStudy and
        SOPClassesInStudy are changed under a lock of its row. ``crc32`` is the file's
        CRC-32, which a Storage Commitment request checks it against (PS3.4 J.3.2).

        Raises:
            InstanceConflict: the instance's study belongs to another patient (PatientID,
                IssuerOfPatientID), or its series to another study.
            SQLAlchemyError: the database failed (after retrying conflicts).
        """
        dbapi = self.engine.dialect.loaded_dbapi
        conflicts = (IntegrityError, OperationalError, dbapi.IntegrityError, dbapi.OperationalError, _Retry)
        attributes = _json(header, Level.IMAGE)
        for attempt in range(ADD_ATTEMPTS):
            try:
                with self._writing() as conn:
                    return _add(conn, header, path, size, transfer_syntax, policy, attributes, crc32)
            except _AlreadyIndexed:
                return AddResult(True, self.path_of(plain_text(header, "SOPInstanceUID")) or "")
            except conflicts:
                if attempt == ADD_ATTEMPTS - 1:
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def remove(self, sop_instance_uid: str) -> str | None:
        """Drop an instance (and parents left empty); its path, if it was indexed."""
        with self._writing() as conn:
            row = conn.execute(select(Instance.id, Instance.path, Instance.series_fk)
                               .where(Instance.sop_uid == sop_instance_uid)).first()
            if row is None:
                return None
            _drop_instance(conn, row.id, row.series_fk)
            return str(row.path)

    def remove_under(self, study_uid: str, series_uid: str | None = None) -> list[RemovedInstance]:
        """Drop a study, or one series of it, in one transaction: its instance and series
        rows, the study and the patient when nothing is left under them, the counters
        and ModalitiesInStudy of what remains kept right. What was dropped (none: nothing
        was indexed there)."""
        with self._writing() as conn:
            statement = (select(Series.id, Series.series_uid, Study.id.label("study_id"), Study.patient_fk)
                         .join(Study, Series.study_fk == Study.id).where(Study.study_uid == study_uid))
            if series_uid is not None:
                statement = statement.where(Series.series_uid == series_uid)
            rows = conn.execute(statement.order_by(Series.id)).all()
            removed: list[RemovedInstance] = []
            for row in rows:
                instances = conn.execute(select(Instance.sop_uid, Instance.path)
                                         .where(Instance.series_fk == row.id).order_by(Instance.id)).all()
                count = len(instances)
                conn.execute(delete(Instance).where(Instance.series_fk == row.id))
                conn.execute(delete(Series).where(Series.id == row.id))
                conn.execute(update(Study).where(Study.id == row.study_id).values(
                    instances=Study.instances - count, series=Study.series - 1))
                conn.execute(update(Patient).where(Patient.id == row.patient_fk).values(
                    instances=Patient.instances - count, series=Patient.series - 1))
                removed += [RemovedInstance(row.series_uid, str(i.sop_uid), str(i.path)) for i in instances]
            if rows:
                _settle_study(conn, rows[0].study_id, rows[0].patient_fk)
            return removed

    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction, taking its turn with the index's other writers."""
        return self._writing()

    def all_paths(self) -> Iterator[tuple[str, str]]:
        """(SOP Instance UID, path) of every indexed instance, streamed."""
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=STREAM_ROWS).execute(
                select(Instance.sop_uid, Instance.path))
            for row in result:
                yield str(row.sop_uid), str(row.path)

    def find(self, query: Query, *, limit: int | None = None, offset: int = 0,
             keys: list[str] | None = None, order: Order = ()) -> Generator[Dataset, None, None]:
        """The C-FIND response identifiers for ``query`` (PS3.4 C.4.1.2), streamed in the
        order the rows were indexed — or in ``order`` (checked by
        :func:`pacskit.archive.ordering.check_order`) —, the first ``offset`` matches
        skipped: the ``keys`` asked for (by default the query's own keys), the unique key
        of its level, Specific Character Set when a value is not ASCII. Names are returned
        as stored (the privacy policy is the client's).

        A deep ``offset`` costs no more than the matches it skips need: none when SQL
        alone decides the query (no match key but the UIDs of the level and those
        above), and, in the indexed order, none either when it continues a page this
        index answered before (keyset pagination: the page ended at a known row, the next
        starts after it)."""
        cap = min(x for x in (limit, query.limit) if x is not None) if (limit or query.limit) else None
        asked = keys if keys is not None else [*query.match, *query.return_keys]
        keys = list(dict.fromkeys([*asked, UNIQUE_KEYS[query.level]]))
        returned = [(tag, dictionary_VR(tag)) for k in keys if (tag := tag_for_keyword(k)) is not None]
        found, ends = 0, [0, 0]
        try:
            with closing(self._matches(query, keys, offset, order)) as matches:
                for row_id, attributes in matches:
                    if cap is not None and found >= cap:
                        return
                    found, ends = found + 1, [ends[1], row_id]
                    yield _identifier(query.level, returned, attributes)
        finally:
            for back, row_id in enumerate(reversed(ends[-found:] if found and not order else [])):
                self._cursors.remember(query, offset + found - back, row_id)

    def count_matches(self, query: Query) -> int:
        """How many matches :meth:`find` has for ``query`` with neither limit nor offset:
        one SQL count when SQL alone decides the query, else each candidate checked."""
        if _decided_by_sql(query):
            with self.engine.connect() as conn:
                return int(conn.scalar(select(func.count()).select_from(_candidates(query).subquery())) or 0)
        with closing(self._matches(query, [])) as matches:
            return sum(1 for _ in matches)

    def instances(self, query: Query) -> Iterator[StoredInstance]:
        """Every instance under the matches of ``query``, at any level."""
        column = {Level.PATIENT: Study.patient_fk, Level.STUDY: Series.study_fk,
                  Level.SERIES: Instance.series_fk, Level.IMAGE: Instance.id}[query.level]
        statement = (select(Instance.sop_class_uid, Instance.sop_uid, Instance.transfer_syntax,
                            Instance.path, Instance.size)
                     .join(Series, Instance.series_fk == Series.id)
                     .join(Study, Series.study_fk == Study.id))
        for row_id, _ in self._matches(query):
            with self.engine.connect() as conn:
                for row in conn.execute(statement.where(column == row_id).order_by(Instance.id)):
                    yield StoredInstance(*row)

    def _matches(self, query: Query, keys: list[str] | None = None,
                 offset: int = 0, order: Order = ()) -> Generator[tuple[int, Dataset], None, None]:
        """(row id at the query's level, its attributes — those the query matches on and
        ``keys`` —) for every match but the first ``offset``, in ``order`` or row order."""
        row_id = _ROW_ID[query.level]
        statement = _candidates(query).order_by(*order_clauses(order, row_id, sqlite=self.sqlite))
        skip = offset
        after = self._cursors.row_before(query, offset) if offset and not order else None
        if after is not None:
            statement, skip = statement.where(row_id > after), 0
        elif offset and _decided_by_sql(query):
            statement, skip = statement.offset(offset), 0
        parsed = _ParsedJson({*query.match, *(keys or ()), "SpecificCharacterSet"})
        with self.engine.connect() as conn, conn.execution_options(yield_per=STREAM_ROWS).execute(
                statement) as result:
            for row in result:
                attributes = _attributes(query.level, row, parsed)
                if query.matches(attributes):
                    if skip:
                        skip -= 1
                        continue
                    yield row.id, attributes

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A connection for a short statement or a write transaction. On SQLite, the
        threads of this process take turns on one connection kept open: SQLite's own
        busy wait sleeps for milliseconds at a time, and the pool's check-out costs more
        than the statements."""
        with self._write_turn:
            conn = self._writer or self.engine.connect()
            try:
                yield conn
            finally:
                reusable = self.sqlite and not conn.invalidated and not conn.in_transaction()
                self._writer = conn if reusable else None
                if not reusable:
                    conn.close()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction; on SQLite, begun with BEGIN IMMEDIATE so that writers of
        other processes queue instead of failing on a stale snapshot."""
        with self._connection() as conn:
            if self.sqlite:
                conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn


def _engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=60000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None  # a connection just checked out of the pool
        dbapi_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _sql(statement: str) -> str:
    return statement


_FIND_INSTANCE = _sql("SELECT id, path, series_fk FROM instance WHERE sop_uid = :uid")
_FIND_STORED = _sql(
    "SELECT sop_class_uid, sop_uid, transfer_syntax, path, size, crc32 FROM instance WHERE sop_uid = :uid")
_FIND_PATIENT = _sql("SELECT id FROM patient WHERE patient_id = :patient_id AND issuer = :issuer")
_INSERT_PATIENT = _sql(
    "INSERT INTO patient (patient_id, issuer, attributes, studies, series, instances) "
    "VALUES (:patient_id, :issuer, :attributes, 0, 0, 0) ON CONFLICT (patient_id, issuer) DO NOTHING RETURNING id")
_FIND_STUDY = _sql(
    "SELECT study.id, study.patient_fk, study.modalities, study.sop_classes, patient.patient_id, patient.issuer "
    "FROM study JOIN patient ON patient.id = study.patient_fk WHERE study.study_uid = :uid")
_INSERT_STUDY = _sql(
    "INSERT INTO study (patient_fk, study_uid, study_date, study_time, accession, modalities, sop_classes, "
    "attributes, series, instances) VALUES (:patient_fk, :uid, :study_date, :study_time, :accession, '', '', "
    ":attributes, 0, 0) ON CONFLICT (study_uid) DO NOTHING RETURNING id")
_LOCK_STUDY = _sql("SELECT modalities, sop_classes FROM study WHERE id = :id")
_FIND_SERIES = _sql("SELECT id, study_fk FROM series WHERE series_uid = :uid")
_INSERT_SERIES = _sql(
    "INSERT INTO series (study_fk, series_uid, modality, attributes, instances) "
    "VALUES (:study_fk, :uid, :modality, :attributes, 0) ON CONFLICT (series_uid) DO NOTHING RETURNING id")
_INSERT_INSTANCE = _sql(
    "INSERT INTO instance (series_fk, sop_uid, sop_class_uid, transfer_syntax, path, size, "
    "received_at, attributes, crc32) VALUES (:series_fk, :uid, :sop_class, :syntax, :path, :size, "
    ":received_at, :attributes, :crc32) ON CONFLICT (sop_uid) DO NOTHING RETURNING id")
_COUNT_SERIES = _sql("UPDATE series SET instances = instances + 1 WHERE id = :id")
_COUNT_STUDY = _sql(
    "UPDATE study SET instances = instances + 1, series = series + :new_series WHERE id = :id")
_COUNT_STUDY_LISTS = _sql(
    "UPDATE study SET instances = instances + 1, series = series + :new_series, "
    "modalities = :modalities, sop_classes = :sop_classes WHERE id = :id")
_COUNT_PATIENT = _sql(
    "UPDATE patient SET instances = instances + 1, series = series + :new_series, "
    "studies = studies + :new_study WHERE id = :id")


class _Raw:
    """The hot path of ``add`` on the DBAPI cursor of a SQLAlchemy connection (same
    transaction): SQLAlchemy's statement machinery costs more than the statements."""

    def __init__(self, conn: Connection) -> None:
        self.cursor = conn.connection.cursor()
        self.sqlite = conn.dialect.name == "sqlite"

    def run(self, sql: str, params: dict[str, Any]) -> None:
        self.cursor.execute(sql if self.sqlite else _PYFORMAT.sub(r"%(\1)s", sql), params)

    def one(self, sql: str, params: dict[str, Any], *, lock: str = "") -> Any:
        """The first row of ``sql``; with ``lock`` (``UPDATE``: to delete it, ``NO KEY
        UPDATE``: to change it, which does not wait for the inserts of rows that refer to
        it), locked until the end of the transaction. SQLite's writers hold the whole
        database."""
        self.run(f"{sql} FOR {lock}" if lock and not self.sqlite else sql, params)
        return self.cursor.fetchone()

    def claim(self, uid: str) -> None:
        """Hold ``uid`` until the end of the transaction, whether or not a row has it yet
        (a PostgreSQL advisory lock on its hash; SQLite's writers hold the whole
        database): writers replacing one instance take turns."""
        if not self.sqlite:
            key = int.from_bytes(hashlib.blake2b(uid.encode(), digest_size=8).digest(), "big", signed=True)
            self.run("SELECT pg_advisory_xact_lock(:key)", {"key": key})


_PYFORMAT = re.compile(r":(\w+)")


class _AlreadyIndexed(Exception):
    """A concurrent writer indexed the SOP Instance UID first (``keep``): roll back."""


class _Retry(Exception):
    """A row a unique constraint said exists has gone: run the transaction again."""


def _add(conn: Connection, header: Dataset, path: str, size: int, syntax: str,
         policy: str, attributes: str, crc32: int | None) -> AddResult:
    raw = _Raw(conn)
    uid = plain_text(header, "SOPInstanceUID")
    old = None
    if policy != "keep":
        raw.claim(uid)
        old = raw.one(_FIND_INSTANCE, {"uid": uid}, lock="UPDATE")
        if old is not None:
            _drop_instance(conn, old[0], old[2])
    study_fk, patient_fk, modalities, sop_classes, new_study = _study(raw, header)
    series_fk, new_series = _series(raw, header, study_fk)
    sop_class = plain_text(header, "SOPClassUID")
    inserted = raw.one(_INSERT_INSTANCE, {
        "series_fk": series_fk, "uid": uid, "sop_class": sop_class, "syntax": syntax, "path": path,
        "size": size, "received_at": datetime.now(UTC).replace(tzinfo=None).isoformat(" "),
        "attributes": attributes, "crc32": crc32})
    if inserted is None:
        raise _AlreadyIndexed if policy == "keep" else _Retry
    raw.run(_COUNT_SERIES, {"id": series_fk})
    modality = plain_text(header, "Modality")
    if new_series or _lacks(modalities, modality) or _lacks(sop_classes, sop_class):
        if not new_study:
            modalities, sop_classes = raw.one(_LOCK_STUDY, {"id": study_fk}, lock="NO KEY UPDATE")
        raw.run(_COUNT_STUDY_LISTS, {
            "id": study_fk, "new_series": int(new_series),
            "modalities": _with(modalities, modality), "sop_classes": _with(sop_classes, sop_class)})
    else:
        raw.run(_COUNT_STUDY, {"id": study_fk, "new_series": 0})
    raw.run(_COUNT_PATIENT, {"id": patient_fk, "new_series": int(new_series), "new_study": int(new_study)})
    return AddResult(old is not None, path, str(old[1]) if old is not None else None)


def _patient(raw: _Raw, header: Dataset) -> int:
    key = {"patient_id": plain_text(header, "PatientID"),
           "issuer": plain_text(header, "IssuerOfPatientID")}
    found = raw.one(_FIND_PATIENT, key) \
        or raw.one(_INSERT_PATIENT, {**key, "attributes": _json(header, Level.PATIENT)}) \
        or raw.one(_FIND_PATIENT, key)
    if found is None:
        raise _Retry
    return int(found[0])


def _study(raw: _Raw, header: Dataset) -> tuple[int, int, str, str, bool]:
    """(study row, patient row, ModalitiesInStudy, SOPClassesInStudy as read, created)."""
    uid = plain_text(header, "StudyInstanceUID")
    found = raw.one(_FIND_STUDY, {"uid": uid})
    if found is None:
        patient_fk = _patient(raw, header)
        created = raw.one(_INSERT_STUDY, {
            "patient_fk": patient_fk, "uid": uid, "study_date": plain_text(header, "StudyDate")[:8],
            "study_time": plain_text(header, "StudyTime")[:16],
            "accession": plain_text(header, "AccessionNumber"), "attributes": _json(header, Level.STUDY)})
        if created is not None:
            return int(created[0]), patient_fk, "", "", True
        found = raw.one(_FIND_STUDY, {"uid": uid})
        if found is None:
            raise _Retry
    study_fk, patient_fk, modalities, sop_classes, patient_id, issuer = found
    claimed = plain_text(header, "PatientID"), plain_text(header, "IssuerOfPatientID")
    if (patient_id, issuer) != claimed:
        raise InstanceConflict("Study Instance UID belongs to another patient",
                               f"study {uid} is of PatientID {patient_id!r} (issuer {issuer!r}), "
                               f"the instance says {claimed[0]!r} (issuer {claimed[1]!r})")
    return int(study_fk), int(patient_fk), str(modalities), str(sop_classes), False


def _series(raw: _Raw, header: Dataset, study_fk: int) -> tuple[int, bool]:
    uid = plain_text(header, "SeriesInstanceUID")
    found = raw.one(_FIND_SERIES, {"uid": uid})
    if found is None:
        created = raw.one(_INSERT_SERIES, {
            "study_fk": study_fk, "uid": uid, "modality": plain_text(header, "Modality"),
            "attributes": _json(header, Level.SERIES)})
        if created is not None:
            return int(created[0]), True
        found = raw.one(_FIND_SERIES, {"uid": uid})
        if found is None:
            raise _Retry
    if int(found[1]) != study_fk:
        raise InstanceConflict("Series Instance UID belongs to another study",
                               f"series {uid} is not in study {plain_text(header, 'StudyInstanceUID')}")
    return int(found[0]), False


def _migrate(conn: Connection, found: int) -> None:
    """Bring an index of schema version ``found`` to :data:`SCHEMA_VERSION`.

    Version 2 makes instance paths unique. Before it, an instance whose SOP Instance UID
    was another's with a trailing control character was indexed apart but written over
    the other's file; of rows sharing a file, those whose UID is not valid are dropped.
    Version 3 adds the worklist table, which ``create_all`` has made already.
    Version 4 adds the ``mpps`` table (Modality Performed Procedure Steps) and the commitment
    table, made by ``create_all`` too, and ``instance.crc32`` (None for the files already stored).
    Version 5 adds ``worklist_item.irregular`` and works out every item's key columns
    again (:func:`pacskit.archive.worklist.key_columns`).
    Version 6 adds ``study.study_time``, filled from each study's attributes, and its
    index with the date.
    """
    if found < 2:
        _unique_paths(conn)
    if found < 4 and "crc32" not in {column["name"] for column in inspect(conn).get_columns("instance")}:
        conn.execute(text("ALTER TABLE instance ADD COLUMN crc32 BIGINT"))
    if found < 5:
        _worklist_key_columns(conn)
    if found < 6:
        _study_times(conn)
    conn.execute(update(SchemaVersion).values(version=SCHEMA_VERSION))
    LOG.info("index upgraded from schema version %d to %d", found, SCHEMA_VERSION)


def _worklist_key_columns(conn: Connection) -> None:
    table = Base.metadata.tables["worklist_item"]
    if "irregular" not in {column["name"] for column in inspect(conn).get_columns("worklist_item")}:
        conn.execute(text("ALTER TABLE worklist_item ADD COLUMN irregular BOOLEAN NOT NULL DEFAULT FALSE"))
    if "ix_worklist_item_irregular" not in {i["name"] for i in inspect(conn).get_indexes("worklist_item")}:
        next(i for i in table.indexes if i.name == "ix_worklist_item_irregular").create(conn)
    for row in conn.execute(select(WorklistItem.id, WorklistItem.attributes)).all():
        columns = key_columns(Dataset.from_json(json.loads(row.attributes)))
        conn.execute(update(WorklistItem).where(WorklistItem.id == row.id).values(**columns))


def _study_times(conn: Connection) -> None:
    if "study_time" not in {column["name"] for column in inspect(conn).get_columns("study")}:
        conn.execute(text("ALTER TABLE study ADD COLUMN study_time VARCHAR(16) NOT NULL DEFAULT ''"))
    STUDY_DATE_TIME_INDEX.create(conn, checkfirst=True)
    time_tag = f"{tag_for_keyword('StudyTime'):08X}"
    for row in conn.execute(select(Study.id, Study.attributes)).all():
        values = json.loads(row.attributes).get(time_tag, {}).get("Value") or [""]
        if values[0]:
            conn.execute(update(Study).where(Study.id == row.id).values(study_time=str(values[0])[:16]))


def _unique_paths(conn: Connection) -> None:
    shared = conn.scalars(select(Instance.path).group_by(Instance.path).having(func.count() > 1)).all()
    for path in shared:
        for row in conn.execute(select(Instance.id, Instance.sop_uid, Instance.series_fk)
                                .where(Instance.path == path)).all():
            if canonical_uid(row.sop_uid) != row.sop_uid:
                _drop_instance(conn, row.id, row.series_fk)
                LOG.warning("index upgrade: dropped the row of %r, which is not a valid UID and shared "
                            "the file %s with another instance (the file holds what was written last)",
                            row.sop_uid, path)
    PATH_INDEX.create(conn, checkfirst=True)


def _drop_instance(conn: Connection, instance_id: int, series_fk: int) -> None:
    """Delete an instance row, keep the counters right, and drop parents left empty."""
    study_fk, patient_fk = conn.execute(
        select(Series.study_fk, Study.patient_fk).join(Study, Series.study_fk == Study.id)
        .where(Series.id == series_fk)).one()
    conn.execute(delete(Instance).where(Instance.id == instance_id))
    conn.execute(update(Series).where(Series.id == series_fk).values(instances=Series.instances - 1))
    conn.execute(update(Study).where(Study.id == study_fk).values(instances=Study.instances - 1))
    conn.execute(update(Patient).where(Patient.id == patient_fk).values(instances=Patient.instances - 1))
    if not conn.scalar(select(exists().where(Instance.series_fk == series_fk))):
        conn.execute(delete(Series).where(Series.id == series_fk))
        conn.execute(update(Study).where(Study.id == study_fk).values(series=Study.series - 1))
        conn.execute(update(Patient).where(Patient.id == patient_fk).values(series=Patient.series - 1))
        modalities = conn.scalars(select(Series.modality).where(Series.study_fk == study_fk)).all()
        conn.execute(update(Study).where(Study.id == study_fk).values(
            modalities="\\".join(sorted({m for m in modalities if m}))))
    if not conn.scalar(select(exists().where(Series.study_fk == study_fk))):
        conn.execute(delete(Study).where(Study.id == study_fk))
        conn.execute(update(Patient).where(Patient.id == patient_fk).values(studies=Patient.studies - 1))
    if not conn.scalar(select(exists().where(Study.patient_fk == patient_fk))):
        conn.execute(delete(Patient).where(Patient.id == patient_fk))


def _settle_study(conn: Connection, study_fk: int, patient_fk: int) -> None:
    """After series of a study were dropped: drop it (and its patient) if it is left
    empty, else recompute its ModalitiesInStudy."""
    if conn.scalar(select(exists().where(Series.study_fk == study_fk))):
        modalities = conn.scalars(select(Series.modality).where(Series.study_fk == study_fk)).all()
        conn.execute(update(Study).where(Study.id == study_fk).values(
            modalities="\\".join(sorted({m for m in modalities if m}))))
        return
    conn.execute(delete(Study).where(Study.id == study_fk))
    conn.execute(update(Patient).where(Patient.id == patient_fk).values(studies=Patient.studies - 1))
    if not conn.scalar(select(exists().where(Study.patient_fk == patient_fk))):
        conn.execute(delete(Patient).where(Patient.id == patient_fk))


def _with(values: str, value: str) -> str:
    present = [v for v in values.split("\\") if v]
    if not value or value in present:
        return values
    return "\\".join(sorted([*present, value]))


def _lacks(values: str, value: str) -> bool:
    return bool(value) and value not in values.split("\\")


def _json(header: Dataset, level: Level) -> str:
    """The attributes of ``level`` in ``header``, as DICOM JSON (PS3.18 F.2)."""
    part: dict[str, Any] = {}
    for tag in _STORED_TAGS[level]:
        element = header.get_item(tag)
        if element is not None:
            part[f"{tag:08X}"] = plain_json(element) or header[tag].to_json_dict(None, 1 << 20)
    return json.dumps(part)


_STORED_TAGS = {level: sorted(tag for k in keywords if k not in COMPUTED_KEYS
                              and (tag := tag_for_keyword(k)) is not None)
                for level, keywords in LEVEL_KEYS.items()}


_ROW_ID = {Level.PATIENT: Patient.id, Level.STUDY: Study.id, Level.SERIES: Series.id, Level.IMAGE: Instance.id}
_SQL_DECIDED = {Level.PATIENT: frozenset(), Level.STUDY: frozenset({"StudyInstanceUID"}),
                Level.SERIES: frozenset({"StudyInstanceUID", "SeriesInstanceUID"}),
                Level.IMAGE: frozenset({"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"})}
PAGE_CURSORS = 256


def _decided_by_sql(query: Query) -> bool:
    """Whether the SQL of :func:`_candidates` selects exactly the matches: no match key
    but lists of UIDs (checked as UIDs by :class:`Query`) of the level and above."""
    return set(query.matching_keys()) <= _SQL_DECIDED[query.level]


class _PageCursors:
    """Where the pages of recent queries ended: (query, matches returned) → the row id
    of the last one, the most recent :data:`PAGE_CURSORS` kept."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ends: OrderedDict[tuple[Any, ...], int] = OrderedDict()

    @staticmethod
    def _key(query: Query, offset: int) -> tuple[Any, ...]:
        return (query.level, query.model, tuple(sorted(query.match.items())), offset)

    def remember(self, query: Query, offset: int, row_id: int) -> None:
        with self.lock:
            key = self._key(query, offset)
            self.ends[key] = row_id
            self.ends.move_to_end(key)
            while len(self.ends) > PAGE_CURSORS:
                self.ends.popitem(last=False)

    def row_before(self, query: Query, offset: int) -> int | None:
        """The row id after which the match number ``offset`` (from 0) comes, if known."""
        with self.lock:
            return self.ends.get(self._key(query, offset))


def _candidates(query: Query) -> Select[*tuple[Any, ...]]:
    """The rows at the query's level that may match: a superset of the true matches."""
    level = query.level
    statement: Select[*tuple[Any, ...]]
    if level is Level.PATIENT:
        statement = select(Patient.id, Patient.attributes.label("patient"), Patient.studies,
                           Patient.series, Patient.instances)
    else:
        statement = (select(Patient.attributes.label("patient"), Study.attributes.label("study"),
                            Study.modalities, Study.sop_classes, Study.series.label("study_series"),
                            Study.instances.label("study_instances"))
                     .select_from(Study).join(Patient, Study.patient_fk == Patient.id))
        if level is Level.STUDY:
            statement = statement.add_columns(Study.id)
        else:
            statement = statement.add_columns(Series.attributes.label("series"),
                                              Series.instances.label("series_instances"))
            statement = statement.join(Series, Series.study_fk == Study.id)
            if level is Level.SERIES:
                statement = statement.add_columns(Series.id)
            else:
                statement = statement.add_columns(Instance.id, Instance.attributes.label("image"),
                                                  Instance.transfer_syntax)
                statement = statement.join(Instance, Instance.series_fk == Series.id)
    for keyword, pattern in query.matching_keys().items():
        condition = _narrowing(keyword, pattern)
        if condition is not None:
            statement = statement.where(condition)
    return statement


def _narrowing(keyword: str, pattern: str) -> Any:
    """An SQL condition no true match fails, on the indexed columns; None if none."""
    column = {"PatientID": Patient.patient_id, "StudyInstanceUID": Study.study_uid,
              "SeriesInstanceUID": Series.series_uid, "SOPInstanceUID": Instance.sop_uid,
              "AccessionNumber": Study.accession, "StudyDate": Study.study_date,
              "Modality": Series.modality}.get(keyword)
    if keyword == "ModalitiesInStudy" and not any(c in pattern for c in "*?"):
        wanted = [v for v in pattern.split("\\") if v]
        other = aliased(Series)
        return exists().where(other.study_fk == Study.id, other.modality.in_(wanted))
    if column is None:
        return None
    if keyword.endswith("UID"):
        return column.in_([v.strip() for v in pattern.split("\\") if v.strip()])
    if keyword == "StudyDate":
        if "-" not in pattern:
            return column == pattern
        start, _, end = pattern.partition("-")
        conditions = [c for c in ((column >= start) if start else None,
                                  (column <= end) if end else None) if c is not None]
        return conditions[0] if len(conditions) == 1 else conditions[0] & conditions[1]
    if "*" in pattern or "?" in pattern:
        like = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(like.replace("*", "%").replace("?", "_"), escape="\\")
    return column == pattern


class _ParsedJson:
    """The attributes of the index's DICOM JSON that one query needs, parsed once per
    query (a patient's or a study's attributes repeat on every row below them)."""

    def __init__(self, keywords: set[str], size: int = 4096) -> None:
        self.keywords = keywords
        self.tags = {f"{tag_for_keyword(k):08X}" for k in keywords if tag_for_keyword(k) is not None}
        self.size = size
        self.cache: dict[str, Dataset] = {}

    def __call__(self, text: str) -> Dataset:
        found = self.cache.get(text)
        if found is None:
            if len(self.cache) >= self.size:
                self.cache.clear()
            found = self.cache[text] = self.image(text)
        return found

    def image(self, text: str) -> Dataset:
        """An instance's attributes, which do not repeat: parsed, not kept."""
        return _from_json({tag: value for tag, value in json.loads(text).items() if tag in self.tags})

    def wants(self, keyword: str) -> bool:
        return keyword in self.keywords


def _from_json(document: dict[str, Any]) -> Dataset:
    """``Dataset.from_json`` for the index's own JSON: text and numbers are taken as
    pydicom wrote them, without validating them again; anything else is pydicom's."""
    ds = Dataset()
    rest = {}
    for key, item in document.items():
        values = item.get("Value")
        vr = item.get("vr")
        if vr in _PLAIN_JSON_VRS and isinstance(values, list) and values \
                and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
            ds.add(DataElement(int(key, 16), vr, values[0] if len(values) == 1 else values,
                               validation_mode=config.IGNORE))
        else:
            rest[key] = item
    if rest:
        ds.update(Dataset.from_json(rest))
    return ds


_PLAIN_JSON_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "IS", "LO", "SH", "TM", "UI", "US", "UL"})


def _attributes(level: Level, row: Any, parsed: _ParsedJson) -> Dataset:
    """What one candidate row knows of the attributes ``parsed`` wants, computed ones
    included."""
    ds = Dataset()
    ds.update(parsed(row.patient))
    computed: dict[str, Any] = {}
    if level is Level.PATIENT:
        computed = {"NumberOfPatientRelatedStudies": row.studies,
                    "NumberOfPatientRelatedSeries": row.series,
                    "NumberOfPatientRelatedInstances": row.instances}
    else:
        ds.update(parsed(row.study))
        computed = {"NumberOfStudyRelatedSeries": row.study_series,
                    "NumberOfStudyRelatedInstances": row.study_instances,
                    "ModalitiesInStudy": lambda: [m for m in row.modalities.split("\\") if m],
                    "SOPClassesInStudy": lambda: [c for c in row.sop_classes.split("\\") if c]}
        if level is not Level.STUDY:
            ds.update(parsed(row.series))
            computed["NumberOfSeriesRelatedInstances"] = row.series_instances
        if level is Level.IMAGE:
            ds.update(parsed.image(row.image))
            computed["TransferSyntaxUID"] = row.transfer_syntax
    for keyword, value in computed.items():
        if parsed.wants(keyword):
            setattr(ds, keyword, value() if callable(value) else value)
    return ds


def _identifier(level: Level, returned: list[tuple[int, str]], attributes: Dataset) -> Dataset:
    """The response identifier: the ``returned`` attributes (tag, VR), empty when unknown."""
    response = Dataset()
    response.QueryRetrieveLevel = level.value
    for tag, vr in returned:
        if tag in attributes:
            element = attributes[tag]
            response.add(DataElement(tag, element.VR, element.value, already_converted=True))
        else:
            response.add(DataElement(tag, vr, [] if vr == "SQ" else None))
    if any(not str(e.value).isascii() for e in response
           if e.VR in ("PN", "LO", "SH", "LT", "ST", "UT", "UC") and e.value is not None):
        response.SpecificCharacterSet = "ISO_IR 192"
    return response


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
