"""The archive index on a real PostgreSQL: the same checks as on SQLite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))

from archive_checks import CHECKS, check_all_matching_cases
from postgres import fresh_database

from pacskit.archive.index import Index


@pytest.fixture
def database():
    """A database of its own, dropped afterwards."""
    with fresh_database() as url:
        yield url


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
