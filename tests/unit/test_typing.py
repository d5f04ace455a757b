"""``mypy --strict`` on the whole ``pacskit`` package, with the project's config (issue 15):
the package ships ``py.typed``, so its annotations are part of its interface. Every module
is checked; a new one is checked from the day it lands (docs/typing.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_the_package_is_clean_under_mypy_strict(tmp_path: Path) -> None:
    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"), "--strict", "--cache-dir", str(tmp_path / "mypy-cache"),
        "--show-error-codes", "--no-pretty", "--no-color-output", "-p", "pacskit",
    ])
    assert status == 0, f"mypy --strict found errors:\n{stdout}{stderr}"
    checked = re.search(r"in (\d+) source files", stdout)
    assert checked and int(checked.group(1)) >= sum(1 for _ in (ROOT / "src" / "pacskit").rglob("*.py")), stdout
