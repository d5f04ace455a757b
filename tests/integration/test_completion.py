"""Shell completion: the script ``pacskit completion bash`` prints, sourced in a real bash,
completes commands, options and option choices by calling the ``pacskit`` executable back;
the zsh script's protocol answers the same way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from clirunner import run_cli


@pytest.fixture
def console_script(tmp_path):
    """A ``pacskit`` executable on PATH, as pip writes the console script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pacskit"
    script.write_text(f"#!{sys.executable}\nfrom pacskit.cli.launch import main\nmain()\n")
    script.chmod(0o755)
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PACSKIT_")},
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def bash_completions(env, *words):
    """What bash offers for the last of ``words`` after sourcing pacskit's script."""
    line = " ".join(f"'{w}'" for w in words)
    program = (f'source <(pacskit completion bash) && COMP_WORDS=({line}) && COMP_CWORD={len(words) - 1} '
               '&& _pacskit_completion pacskit && printf "%s\\n" "${COMPREPLY[@]}"')
    result = subprocess.run([shutil.which("bash"), "-c", program], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_bash_completes_a_command_an_option_and_its_choices(console_script):
    assert bash_completions(console_script, "pacskit", "fi") == ["find"]
    assert bash_completions(console_script, "pacskit", "find", "pacs", "--for") == ["--format"]
    assert bash_completions(console_script, "pacskit", "find", "pacs", "--format", "") == [
        "table", "tsv", "csv", "json", "dicom-json"]
    assert "show" in bash_completions(console_script, "pacskit", "config", "")


def test_the_zsh_script_and_its_protocol(console_script):
    script = run_cli("completion", "zsh")
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("#compdef pacskit") and "_PACSKIT_COMPLETE=complete_zsh" in script.stdout
    answer = subprocess.run(["pacskit"], capture_output=True, text=True, timeout=60,
                            env={**console_script, "_PACSKIT_COMPLETE": "complete_zsh",
                                 "_TYPER_COMPLETE_ARGS": "pacskit fi"})
    assert answer.returncode == 0, answer.stderr
    assert '"find":' in answer.stdout and '"echo":' not in answer.stdout


def test_an_unknown_shell_is_a_usage_error():
    result = run_cli("completion", "tcsh")
    assert result.returncode == 2 and "tcsh" in result.stderr


def test_node_names_of_the_configuration_in_force_are_completed(console_script, tmp_path):
    (tmp_path / "pacskit.toml").write_text(
        '[nodes.pacs]\nae_title = "PACS"\nhost = "127.0.0.1"\nport = 4242\n'
        '[nodes.pacs-research]\nae_title = "RES"\nhost = "127.0.0.1"\nport = 4243\n'
        '[nodes.orthanc]\nae_title = "ORTHANC"\nhost = "127.0.0.1"\nport = 4244\n')
    other = tmp_path / "elsewhere.toml"
    other.write_text('[nodes.remote]\nae_title = "REMOTE"\nhost = "127.0.0.1"\nport = 104\n')
    here = {**console_script, "PWD": str(tmp_path)}

    def offered(*words):
        line = " ".join(f"'{w}'" for w in words)
        program = (f'cd {tmp_path} && source <(pacskit completion bash) && COMP_WORDS=({line}) '
                   f'&& COMP_CWORD={len(words) - 1} && _pacskit_completion pacskit && printf "%s\\n" "${{COMPREPLY[@]}}"')
        result = subprocess.run([shutil.which("bash"), "-c", program], capture_output=True, text=True,
                                env=here, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert offered("pacskit", "find", "pa") == ["pacs", "pacs-research"]
    assert offered("pacskit", "echo", "") == ["orthanc", "pacs", "pacs-research"]
    assert offered("pacskit", "store", "x.dcm", "--to", "or") == ["orthanc"]
    assert offered("pacskit", "--config", str(other), "get", "") == ["remote"]
    (tmp_path / "pacskit.toml").write_text("[nodes.broken\n")
    assert offered("pacskit", "move", "") == []


def test_copy_completes_from_and_to_with_nodes_archive_and_folders(console_script, tmp_path):
    (tmp_path / "pacskit.toml").write_text(
        '[nodes.pacs]\nae_title = "PACS"\nhost = "127.0.0.1"\nport = 4242\n'
        '[nodes.orthanc]\nae_title = "ORTHANC"\nhost = "127.0.0.1"\nport = 4244\n')
    (tmp_path / "patients-cd").mkdir()
    (tmp_path / "patients-cd" / "series-1").mkdir()
    (tmp_path / "notes.txt").write_text("a file, not a place")
    here = {**console_script, "PWD": str(tmp_path)}

    def offered(*words):
        line = " ".join(f"'{w}'" for w in words)
        program = (f'cd {tmp_path} && source <(pacskit completion bash) && COMP_WORDS=({line}) '
                   f'&& COMP_CWORD={len(words) - 1} && _pacskit_completion pacskit && printf "%s\\n" "${{COMPREPLY[@]}}"')
        result = subprocess.run([shutil.which("bash"), "-c", program], capture_output=True, text=True,
                                env=here, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert offered("pacskit", "copy", "pa") == ["pacs", "patients-cd/"]
    assert offered("pacskit", "copy", "pacs", "") == ["orthanc", "pacs", "archive", "bin/", "patients-cd/"]
    assert offered("pacskit", "copy", "pacs", "ar") == ["archive"]
    assert offered("pacskit", "copy", "patients-cd/", "patients-cd/s") == ["patients-cd/series-1/"]
    assert offered("pacskit", "copy", "--study-uid", "1.2", "orthanc", "or") == ["orthanc"]
