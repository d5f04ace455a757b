"""The worklist's SQL prefilter and encoded answers on a real PostgreSQL: the same checks
as on SQLite (its string comparison, LIKE and boolean column are PostgreSQL's here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))

from postgres import fresh_database
from worklist_prefilter_checks import CHECKS

from pacskit.archive.index import Index


@pytest.fixture
def index():
    with fresh_database() as url:
        opened = Index.open(url)
        yield opened
        opened.close()


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_postgres_worklist(index, check):
    check(index)
