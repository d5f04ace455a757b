"""The archive index on SQLite: the PS3.4 matching table and the index's own rules."""

from __future__ import annotations

import itertools

import pytest
from archive_checks import CHECKS, check_matching_case
from matching_cases import MATCHING_CASES
from sqlalchemy import update

from pacskit.archive.index import Index
from pacskit.archive.schema import SCHEMA_VERSION, SchemaVersion
from pacskit.errors import ConfigError


@pytest.fixture
def index(tmp_path):
    counter = itertools.count()
    opened = Index.open(f"sqlite:///{tmp_path}/index-{next(counter)}.db")
    yield opened
    opened.close()


@pytest.mark.parametrize("case", MATCHING_CASES, ids=[c[0] for c in MATCHING_CASES])
def test_archive_follows_ps3_4_c2_2_2(index, case):
    check_matching_case(index, case)


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_archive_index(index, check):
    check(index)


def test_a_newer_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/index.db"
    Index.open(url).close()
    opened = Index.open(url)
    with opened.engine.begin() as conn:
        conn.execute(update(SchemaVersion).values(version=SCHEMA_VERSION + 1))
    opened.close()
    with pytest.raises(ConfigError, match="schema version"):
        Index.open(url)


def test_an_unreachable_database_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot open the index"):
        Index.open("postgresql://nobody@127.0.0.1:1/none")
