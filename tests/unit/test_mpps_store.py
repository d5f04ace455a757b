"""The archive's performed procedure steps on SQLite (PostgreSQL: the integration tests)."""

from __future__ import annotations

import pytest
from mpps_store_checks import CHECKS
from sqlalchemy import inspect, select, update

from pacskit.archive.index import Index
from pacskit.archive.schema import SCHEMA_VERSION, SchemaVersion


@pytest.fixture
def index(tmp_path):
    opened = Index.open(f"sqlite:///{tmp_path}/index.db")
    yield opened
    opened.close()


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_sqlite_steps(index, check):
    check(index)


def test_an_index_of_schema_version_3_gets_the_mpps_table(tmp_path):
    url = f"sqlite:///{tmp_path}/index.db"
    index = Index.open(url)
    with index.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE mpps")
        conn.execute(update(SchemaVersion).values(version=3))
    index.close()
    reopened = Index.open(url)
    try:
        assert "mpps" in inspect(reopened.engine).get_table_names()
        with reopened.engine.connect() as conn:
            assert conn.scalar(select(SchemaVersion.version)) == SCHEMA_VERSION == 6
    finally:
        reopened.close()
