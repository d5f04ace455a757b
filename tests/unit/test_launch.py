"""The command line starts without pydicom's pixel back-ends only for commands that never
decode pixel data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pacskit.cli.launch import pixel_free


@pytest.mark.parametrize(("args", "expected"), [
    ([], True),
    (["--version"], True),
    (["--help"], True),
    (["echo", "PACS"], True),
    (["-v", "find", "PACS", "--level", "series"], True),
    (["get", "dicom://A@127.0.0.1:104", "-o", "out"], True),
    (["move", "PACS", "--to", "OTHER"], True),
    (["nodes"], True),
    (["store", "folder", "--to", "PACS"], True),
    (["serve"], False),
    (["archive", "check"], False),
    (["--aet", "ME", "-c", "x.toml", "get", "PACS", "-o", "out"], True),
    (["--aet=ME", "echo", "PACS"], True),
    (["--verbose", "serve"], False),
    (["get", "serve", "-o", "out"], False),
    (["get", "store", "-o", "out"], True),
    (["convert", "folder"], False),
])
def test_only_pixel_free_commands_start_lean(args, expected):
    assert pixel_free(args) is expected


def imports_after(cwd: Path, *args: str, then: str = "") -> set[str]:
    """The modules imported once ``pacskit args`` has run and ``then`` (code run at exit,
    as a later use of pydicom would be)."""
    probe = ("import atexit, sys\n"
             f"atexit.register(lambda: ({then or 'None'}, print(' '.join(sorted(sys.modules)), file=sys.stderr)))\n"
             f"sys.argv = ['pacskit', *{list(args)!r}]\n"
             "from pacskit.cli.launch import main\n"
             "main()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return set(result.stderr.split())


def test_nodes_and_store_run_without_numpy_and_serve_with_it(tmp_path):
    """pydicom, whenever a pixel-free command first imports it, comes without its pixel
    modules; they can be imported afterwards, and pydicom says it has none."""
    (tmp_path / "pacskit.toml").write_text('[nodes.PACS]\nae_title = "PACS"\nhost = "127.0.0.1"\nport = 104\n')
    for args in (["--aet", "ME", "nodes"], ["store", "--help"]):
        lean = imports_after(tmp_path, *args, then="__import__('pydicom')")
        assert "pydicom" in lean
        assert not {"numpy", "PIL", "requests"} & lean
    later = imports_after(tmp_path, "nodes", then="__import__('pydicom'), __import__('numpy'), print("
                          "__import__('pydicom.pixels.utils').pixels.utils.HAVE_NP, file=sys.stderr)")
    assert {"pydicom", "numpy", "False"} <= later
    full = imports_after(tmp_path, "serve", "--help")
    assert "numpy" in full


@pytest.mark.parametrize(("first", "expected"), [
    ("from pacskit.cli import launch; launch.import_pydicom_without(launch.PIXEL_MODULES)", "True"),
    ("import pydicom; from pacskit.cli import launch; launch.import_pydicom_without(launch.PIXEL_MODULES)", "False"),
    ("import numpy; from pacskit.cli import launch; launch.import_pydicom_without(['numpy'])", "False"),
    ("from pacskit.cli import launch", "False"),
    ("from pacskit.cli import launch; launch.defer_pydicom_without(launch.PIXEL_MODULES)", "True"),
    ("from pacskit.cli import launch; launch.defer_pydicom_without(launch.PIXEL_MODULES); import pydicom.uid",
     "True"),
    ("import numpy; from pacskit.cli import launch; launch.defer_pydicom_without(['numpy']); import pydicom",
     "False"),
])
def test_started_pixel_free_says_whether_pydicom_came_without_its_pixel_modules(first, expected):
    probe = f"{first}\nprint(launch.started_pixel_free())"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == expected, result.stderr


def test_the_client_install_requires_no_package_of_an_extra():
    import tomllib
    from pathlib import Path

    from pacskit.extras import EXTRA_OF_MODULE

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    distributions = {"numpy": "numpy", "pylibjpeg": "pylibjpeg", "libjpeg": "pylibjpeg-libjpeg",
                     "openjpeg": "pylibjpeg-openjpeg", "PIL": "pillow", "sqlalchemy": "sqlalchemy",
                     "psycopg": "psycopg", "starlette": "starlette", "uvicorn": "uvicorn"}
    assert set(distributions) == set(EXTRA_OF_MODULE)

    def names(requirements):
        return {r.split("[")[0].split(">")[0].split("=")[0].strip().lower() for r in requirements}

    core = names(project["dependencies"])
    extras = project["optional-dependencies"]
    for module, extra in EXTRA_OF_MODULE.items():
        assert distributions[module] not in core
        assert distributions[module] in names(extras[extra]), (module, extra)
    assert "pacskit" in names(extras["server"]) and "pacskit" in names(extras["dev"])


def test_the_help_lists_every_command_with_its_own_summary_without_importing_it():
    import typer.main

    from pacskit.cli.main import COMMANDS, GROUP_HELP, GROUPS, build_app

    loaded = typer.main.get_command(build_app())
    listed = typer.main.get_command(build_app(""))
    assert list(listed.commands) == list(loaded.commands) == [*COMMANDS, *GROUPS]
    for name, command in loaded.commands.items():
        summary = COMMANDS[name][2] if name in COMMANDS else GROUP_HELP[name]
        assert command.get_short_help_str(limit=1000) == summary, name
        assert listed.commands[name].get_short_help_str(limit=1000) == summary, name


@pytest.mark.parametrize(("args", "word"), [
    (["echo", "pacs"], "echo"), (["-v", "--aet", "ME", "find", "pacs"], "find"),
    (["--config", "x.toml", "archive", "ls"], "archive"), (["--help"], ""), ([], ""), (["-vv"], ""),
])
def test_the_command_word_skips_root_options_and_their_values(args, word):
    from pacskit.cli.launch import command_word

    assert command_word(args) == word


def test_help_and_version_import_neither_pydicom_nor_pydantic(tmp_path):
    heavy = {"pydicom", "pynetdicom", "pydantic", "pydantic_settings", "numpy", "pacskit.client",
             "pacskit.settings"}
    assert not heavy & imports_after(tmp_path, "--help")
    version = imports_after(tmp_path, "--version")
    assert not heavy & version
    assert not {"typer", "rich", "click"} & {name.split(".")[0] for name in version}
