"""The typing ratchet (issue 15): every module of ``typed_modules.txt`` stays clean under
``mypy --strict`` with the project's config. Modules not in the list are still analysed
(their types feed the listed ones) but their errors are not reported
(``--follow-imports=silent``); docs/typing.md lists them."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]
LISTED = Path(__file__).with_name("typed_modules.txt")


def typed_modules() -> list[str]:
    lines = (line.strip() for line in LISTED.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def module_path(module: str) -> Path:
    base = ROOT / "src" / Path(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def test_the_list_names_existing_modules_once() -> None:
    modules = typed_modules()
    assert modules, "typed_modules.txt lists no module"
    assert len(modules) == len(set(modules)), "a module is listed twice"
    missing = [m for m in modules if not module_path(m).is_file()]
    assert not missing, f"typed_modules.txt lists modules that do not exist: {missing}"


@pytest.mark.timeout(180)
def test_listed_modules_are_clean_under_mypy_strict(tmp_path: Path) -> None:
    args = ["--config-file", str(ROOT / "pyproject.toml"), "--strict",
            "--follow-imports=silent", "--cache-dir", str(tmp_path / "mypy-cache"),
            "--no-error-summary", "--show-error-codes", "--no-pretty", "--no-color-output"]
    for module in typed_modules():
        args += ["-m", module]
    stdout, stderr, status = api.run(args)
    assert status == 0, f"mypy --strict found errors in listed modules:\n{stdout}{stderr}"
