"""Storage Commitment's request and report (PS3.4 J.3) as datasets, and the CRC-32 the
ingest path keeps of each file (schema version 4); the transactions table is checked
with the index (archive_checks.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import zlib

import pytest
from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import inspect, select, update

from pacskit.archive.index import Index
from pacskit.archive.ingest import Ingest, Received
from pacskit.archive.schema import SCHEMA_VERSION, SchemaVersion
from pacskit.commitment import (
    ALL_COMMITTED,
    SOME_FAILED,
    Failure,
    InvalidRequest,
    Reference,
    Report,
    action_information,
    parse_request,
)
from pacskit.net.identifier import encode_identifier
from pacskit.settings import ArchiveSettings

CT = "1.2.840.10008.5.1.4.1.1.2"
ONE = Reference(CT, "1.2.3.1")
TWO = Reference(CT, "1.2.3.2")


@pytest.fixture
def index(tmp_path):
    opened = Index.open(f"sqlite:///{tmp_path}/index.db")
    yield opened
    opened.close()


def test_a_report_reads_back_as_it_was_written():
    report = Report("1.2.3.9", [ONE], [Failure(TWO, 0x0112)])
    information = report.to_dataset()
    assert information.FailedSOPSequence[0].FailureReason == 0x0112
    assert report.event_type_id == SOME_FAILED
    assert Report.from_dataset(information) == report
    assert Report("1.2.3.9", [ONE]).event_type_id == ALL_COMMITTED
    assert "FailedSOPSequence" not in Report("1.2.3.9", [ONE]).to_dataset()


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_a_request_reads_back_and_a_malformed_one_names_its_attribute():
    assert parse_request(action_information("1.2.3.9", [ONE, TWO])) == ("1.2.3.9", [ONE, TWO])
    with pytest.raises(InvalidRequest) as no_uid:
        parse_request(Dataset())
    assert no_uid.value.tag == 0x00081195
    empty = Dataset()
    empty.TransactionUID = "1.2.3.9"
    empty.ReferencedSOPSequence = []
    with pytest.raises(InvalidRequest) as no_items:
        parse_request(empty)
    assert no_items.value.tag == 0x00081199
    with pytest.raises(InvalidRequest, match="item 2"):
        parse_request(action_information("1.2.3.9", [ONE, Reference(CT, "1.2.x")]))


def test_the_ingest_path_keeps_the_crc32_of_the_file_it_wrote(tmp_path, index):
    ingest = Ingest(ArchiveSettings(data_dir=tmp_path / "data", fsync=False), index)
    uid = generate_uid()
    header = Dataset()
    header.SOPClassUID = CT
    header.SOPInstanceUID = uid
    header.StudyInstanceUID = generate_uid()
    header.SeriesInstanceUID = generate_uid()
    header.PatientID = "P1"
    outcome = ingest.ingest(Received(CT, uid, ExplicitVRLittleEndian, encode_identifier(header,
                                                                                         ExplicitVRLittleEndian)))
    stored = index.instance(uid)
    assert outcome.status == 0 and stored is not None
    assert stored.crc32 == zlib.crc32(outcome.path.read_bytes())
    assert stored.size == outcome.path.stat().st_size


def test_an_index_of_schema_version_3_gets_the_crc32_column_empty(tmp_path):
    url = f"sqlite:///{tmp_path}/index.db"
    index = Index.open(url)
    header = Dataset()
    header.SOPClassUID = CT
    header.SOPInstanceUID = "1.2.3.4"
    header.StudyInstanceUID = "1.2.3"
    header.SeriesInstanceUID = "1.2.3.5"
    index.add(header, path="a.dcm", size=10, transfer_syntax=ExplicitVRLittleEndian)
    with index.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE instance DROP COLUMN crc32")
        conn.exec_driver_sql("DROP TABLE commitment_transaction")
        conn.execute(update(SchemaVersion).values(version=3))
    index.close()
    reopened = Index.open(url)
    try:
        assert "crc32" in {c["name"] for c in inspect(reopened.engine).get_columns("instance")}
        assert "commitment_transaction" in inspect(reopened.engine).get_table_names()
        with reopened.engine.connect() as conn:
            assert conn.scalar(select(SchemaVersion.version)) == SCHEMA_VERSION == 6
        assert reopened.instance("1.2.3.4").crc32 is None
    finally:
        reopened.close()
