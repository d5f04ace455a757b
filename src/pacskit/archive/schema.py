"""The index tables: patient, study, series, instance (SQLAlchemy 2.0 typed models).

Each level keeps the attributes C-FIND filters on most as indexed columns, the rest of
its attributes (the keys of its level in :data:`pacskit.query.LEVEL_KEYS`) as DICOM JSON
(PS3.18 F.2), and counters of what lies below it, so that every C-FIND is answered from
the index alone. Unique constraints carry the archive's integrity: one row per UID at
each level, and one instance per file (schema version 2). Worklist items (schema version
3) are kept the same way: the whole item as DICOM JSON, the keys a modality queries by as
indexed columns. Schema version 4 adds Modality Performed Procedure Steps (the step
as DICOM JSON, its status and the keys that link it to the worklist as columns), the
CRC-32 of each stored file, computed as it is written, and the Storage Commitment
transactions (PS3.4 J) until their report is delivered. Schema version 5 marks the
worklist items whose keys the columns cannot hold exactly (``irregular``), which every
worklist query then reads. Schema version 6 keeps each study's Study Time as a column
beside its date, so that a study list ordered by date and time is read off an index
(:mod:`pacskit.archive.ordering`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 6


class Base(DeclarativeBase):
    """The index's declarative base."""


class SchemaVersion(Base):
    """The version of this schema the database was created with (for migrations)."""

    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class Patient(Base):
    __tablename__ = "patient"
    __table_args__ = (UniqueConstraint("patient_id", "issuer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    issuer: Mapped[str] = mapped_column(String(64), default="")
    attributes: Mapped[str] = mapped_column(Text, default="{}")
    studies: Mapped[int] = mapped_column(Integer, default=0)
    series: Mapped[int] = mapped_column(Integer, default=0)
    instances: Mapped[int] = mapped_column(Integer, default=0)


class Study(Base):
    __tablename__ = "study"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_fk: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    study_uid: Mapped[str] = mapped_column(String(64), unique=True)
    study_date: Mapped[str] = mapped_column(String(8), default="", index=True)
    study_time: Mapped[str] = mapped_column(String(16), default="")
    accession: Mapped[str] = mapped_column(String(64), default="", index=True)
    modalities: Mapped[str] = mapped_column(String(255), default="")
    sop_classes: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[str] = mapped_column(Text, default="{}")
    series: Mapped[int] = mapped_column(Integer, default=0)
    instances: Mapped[int] = mapped_column(Integer, default=0)


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    series_uid: Mapped[str] = mapped_column(String(64), unique=True)
    modality: Mapped[str] = mapped_column(String(16), default="", index=True)
    attributes: Mapped[str] = mapped_column(Text, default="{}")
    instances: Mapped[int] = mapped_column(Integer, default=0)


class Instance(Base):
    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_fk: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    sop_uid: Mapped[str] = mapped_column(String(64), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    attributes: Mapped[str] = mapped_column(Text, default="{}")
    crc32: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The CRC-32 of the whole file as written (None for files indexed before schema 4)."""


class WorklistItem(Base):
    """One scheduled procedure step of the Modality Worklist (PS3.4 K.6.1): the item as
    DICOM JSON, its status, and the keys matched most as columns (station AE titles as
    ``|AE1|AE2|``); ``irregular`` when those columns cannot hold them exactly
    (:func:`pacskit.archive.worklist.key_columns`)."""

    __tablename__ = "worklist_item"
    __table_args__ = (UniqueConstraint("study_uid", "requested_procedure_id", "step_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    station_aets: Mapped[str] = mapped_column(String(255), default="")
    start_date: Mapped[str] = mapped_column(String(8), default="")
    start_time: Mapped[str] = mapped_column(String(16), default="")
    modality: Mapped[str] = mapped_column(String(16), default="")
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    accession: Mapped[str] = mapped_column(String(64), default="", index=True)
    study_uid: Mapped[str] = mapped_column(String(64), index=True)
    requested_procedure_id: Mapped[str] = mapped_column(String(64))
    step_id: Mapped[str] = mapped_column(String(64))
    irregular: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    attributes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class PerformedStep(Base):
    """One Modality Performed Procedure Step (PS3.4 F.7): the step as DICOM JSON, its
    status, the first Study Instance UID and accession number of its Scheduled Step
    Attributes Sequence, who created it."""

    __tablename__ = "mpps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    study_uid: Mapped[str] = mapped_column(String(64), default="", index=True)
    accession: Mapped[str] = mapped_column(String(64), default="")
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    modality: Mapped[str] = mapped_column(String(16), default="")
    station_aet: Mapped[str] = mapped_column(String(16), default="")
    created_by: Mapped[str] = mapped_column(String(16), default="")
    attributes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class CommitmentTransaction(Base):
    """One Storage Commitment request (PS3.4 J.3.2) and its report: the instances asked
    for (``requested``) as JSON ``[[class, instance], ...]``, the outcome once checked as JSON
    ``{"committed": [[class, instance], ...], "failed": [[class, instance, reason], ...]}``,
    and its state: ``received`` (not yet checked), ``checked`` (report not yet
    delivered), ``delivered``."""

    __tablename__ = "commitment_transaction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_uid: Mapped[str] = mapped_column(String(64), index=True)
    requester: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    requested: Mapped[str] = mapped_column(Text)
    report: Mapped[str | None] = mapped_column(Text, nullable=True)
    duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(DateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


Index("ix_worklist_date_modality", WorklistItem.start_date, WorklistItem.modality)
Index("ix_study_patient_date", Study.patient_fk, Study.study_date)
STUDY_DATE_TIME_INDEX = Index("ix_study_date_time", Study.study_date, Study.study_time)
PATH_INDEX = Index("ux_instance_path", Instance.path, unique=True)
