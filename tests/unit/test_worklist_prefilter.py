"""The worklist's SQL prefilter and encoded answers on SQLite (the checks are in
worklist_prefilter_checks.py, shared with PostgreSQL)."""

import pytest
from worklist_prefilter_checks import CHECKS

from pacskit.archive.index import Index


@pytest.fixture
def index(tmp_path):
    opened = Index.open(f"sqlite:///{tmp_path}/index.db")
    yield opened
    opened.close()


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_sqlite_worklist(index, check):
    check(index)
