"""The archive index on a real PostgreSQL: the same checks as on SQLite."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))

from archive_checks import CHECKS, check_all_matching_cases

from pacskit.archive.index import Index

SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def database():
    """A database of its own, dropped afterwards. No PostgreSQL is a failure: `make test`
    expects the server the machine runs (see README)."""
    name = f"pacskit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def index(database):
    opened = Index.open(database)
    yield opened
    opened.close()


def test_postgres_follows_ps3_4_c2_2_2(database):
    def fresh() -> Index:
        index = Index.open(database)
        with index.engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE instance, series, study, patient")
        return index
    check_all_matching_cases(fresh)


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_postgres_index(index, check):
    check(index)
