"""An archive index of many instances, made in seconds: one instance indexed as the
archive does, then its row copied with SOP Instance UIDs of their own (QIDO-RS answers
from the index alone; the copies have no file)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pydicom import dcmread

from pacskit.archive.index import Index


def fill_index(data_dir: Path, instance: Path, count: int) -> None:
    """``data_dir/index.db`` holding ``instance`` and ``count - 1`` copies of it in its
    series."""
    data_dir.mkdir(parents=True, exist_ok=True)
    database = data_dir / "index.db"
    index = Index.open(f"sqlite:///{database}")
    ds = dcmread(instance, stop_before_pixels=True)
    index.add(ds, path=str(instance), size=instance.stat().st_size, transfer_syntax=str(ds.file_meta.TransferSyntaxUID))
    index.close()
    with sqlite3.connect(database) as conn:
        series_fk, sop_class, syntax, size, received, attributes = conn.execute(
            "SELECT series_fk, sop_class_uid, transfer_syntax, size, received_at, attributes FROM instance").fetchone()
        uid = str(ds.SOPInstanceUID)
        rows = ((series_fk, f"2.25.{n}", sop_class, syntax, f"copies/{n}.dcm", size, received,
                 attributes.replace(uid, f"2.25.{n}")) for n in range(1, count))
        conn.executemany("INSERT INTO instance (series_fk, sop_uid, sop_class_uid, transfer_syntax, path, size, "
                         "received_at, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for table, key in (("series", "id = ?"), ("study", "id = (SELECT study_fk FROM series WHERE id = ?)"),
                           ("patient", "id = (SELECT patient_fk FROM study JOIN series ON series.study_fk = study.id "
                                       "WHERE series.id = ?)")):
            conn.execute(f"UPDATE {table} SET instances = ? WHERE {key}", (count, series_fk))
