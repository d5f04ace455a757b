"""``pacskit init`` and ``pacskit config show`` through the real console script: the starter
file is valid and in force, an existing file is kept, each setting names its source
(default, file, environment variable, option) and secrets are masked."""

from __future__ import annotations

import json

from clirunner import assert_one_line_error, run_cli


def shown(result):
    assert result.returncode == 0, result.stderr
    return {s["name"]: s for s in json.loads(result.stdout)["settings"]}


def test_init_writes_a_starter_file_that_config_show_reads(tmp_path):
    written = run_cli("init", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    text = (tmp_path / "pacskit.toml").read_text()
    assert text.startswith("# pacskit.toml") and "[nodes.pacs]" in text
    settings = shown(run_cli("config", "show", "-f", "json", cwd=tmp_path))
    assert settings["nodes.pacs.port"] == {"name": "nodes.pacs.port", "value": 4242,
                                           "source": f"file {tmp_path / 'pacskit.toml'}"}
    assert settings["max_pdu"]["source"] == "default"


def test_init_refuses_to_replace_a_file_without_force(tmp_path):
    (tmp_path / "pacskit.toml").write_text('ae_title = "MINE"\n')
    assert_one_line_error(run_cli("init", cwd=tmp_path), 30, "--force")
    assert (tmp_path / "pacskit.toml").read_text() == 'ae_title = "MINE"\n'
    assert run_cli("init", "--force", cwd=tmp_path).returncode == 0
    assert "[nodes.pacs]" in (tmp_path / "pacskit.toml").read_text()


def test_each_setting_names_where_it_came_from(tmp_path):
    (tmp_path / "pacskit.toml").write_text('ae_title = "FROMFILE"\nport = 4000\n[web]\nport = 9000\n')
    settings = shown(run_cli("config", "show", "--port", "5000", "-f", "json", cwd=tmp_path,
                             env={"PACSKIT_WEB__PORT": "9100", "PACSKIT_DIMSE_TIMEOUT": "5"}))
    assert (settings["ae_title"]["value"], settings["ae_title"]["source"]) == ("FROMFILE", f"file {tmp_path / 'pacskit.toml'}")
    assert (settings["port"]["value"], settings["port"]["source"]) == (5000, "option --port")
    assert (settings["web.port"]["value"], settings["web.port"]["source"]) == (9100, "env PACSKIT_WEB__PORT")
    assert (settings["dimse_timeout"]["value"], settings["dimse_timeout"]["source"]) == (5.0, "env PACSKIT_DIMSE_TIMEOUT")
    assert settings["connect_timeout"]["source"] == "default"


def test_secrets_are_masked_in_every_format(tmp_path):
    (tmp_path / "pacskit.toml").write_text(
        '[nodes.web]\ndicomweb_url = "https://reader:hunter2@pacs.example/dicom-web"\ntoken = "s3cr3t-token"\n'
        '[nodes.basic]\ndicomweb_url = "https://pacs.example/dicom-web"\nusername = "reader"\npassword = "pa55word"\n'
        '[web]\nusers = { alice = "wonderland" }\ntokens = ["t0ken"]\n'
        '[archive]\ndb = "postgresql+psycopg://pacskit:dbpass@localhost/pacskit"\n')
    for output in ("json", "tsv", "csv", "table"):
        result = run_cli("config", "show", "-f", output, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        for secret in ("hunter2", "s3cr3t-token", "pa55word", "wonderland", "t0ken", "dbpass"):
            assert secret not in result.stdout, (output, secret)
    settings = shown(run_cli("config", "show", "-f", "json", cwd=tmp_path))
    assert settings["nodes.web.dicomweb_url"]["value"] == "https://reader:****@pacs.example/dicom-web"
    assert settings["web.users"]["value"] == {"alice": "****"}
    assert settings["nodes.basic.username"]["value"] == "reader"
