"""The archive's performed procedure steps on a real PostgreSQL: the same checks as on SQLite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))

from mpps_store_checks import CHECKS
from postgres import fresh_database

from pacskit.archive.index import Index


@pytest.fixture
def index():
    with fresh_database() as url:
        opened = Index.open(url)
        yield opened
        opened.close()


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_postgres_steps(index, check):
    check(index)
