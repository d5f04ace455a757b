import pytest

from pacskit.errors import ConfigError, InvalidAddress, UnknownNode
from pacskit.settings import Settings

CONFIG = """
ae_title = "FROMFILE"
dimse_timeout = 7
[nodes.pacs]
ae_title = "TELEMIS"
host = "127.0.0.1"
port = 104
"""


@pytest.fixture
def config(tmp_path, monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("PACSKIT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    path = tmp_path / "pacskit.toml"
    path.write_text(CONFIG)
    return path


def test_defaults_without_any_file(tmp_path, monkeypatch, config):
    config.unlink()
    settings = Settings.load()
    assert settings.ae_title == "PACSKIT"
    assert settings.nodes == {}
    assert settings.allow_patient_names is False


def test_file_in_working_folder_is_read(config):
    settings = Settings.load()
    assert settings.ae_title == "FROMFILE"
    assert settings.dimse_timeout == 7
    assert settings.resolve_node("pacs").address == "TELEMIS@127.0.0.1:104"


def test_user_config_folder_is_read(config, tmp_path):
    user = tmp_path / "xdg" / "pacskit"
    user.mkdir(parents=True)
    config.rename(user / "pacskit.toml")
    assert Settings.load().ae_title == "FROMFILE"


def test_precedence_flag_over_environment_over_file(config, monkeypatch):
    monkeypatch.setenv("PACSKIT_AE_TITLE", "FROMENV")
    monkeypatch.setenv("PACSKIT_NODES__PACS__PORT", "1104")
    assert Settings.load().ae_title == "FROMENV"
    assert Settings.load().resolve_node("pacs").port == 1104
    assert Settings.load().resolve_node("pacs").ae_title == "TELEMIS"
    assert Settings.load(ae_title="FROMFLAG").ae_title == "FROMFLAG"
    assert Settings.load(ae_title=None).ae_title == "FROMENV"


def test_pacskit_config_names_the_file(config, monkeypatch, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text('ae_title = "OTHER"\n')
    monkeypatch.setenv("PACSKIT_CONFIG", str(other))
    assert Settings.load().ae_title == "OTHER"
    monkeypatch.setenv("PACSKIT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not a file"):
        Settings.load()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ae_title = \n", "not valid TOML"),
        ("port = 70000\n", "port"),
        ('ae_title = "WAY_TOO_LONG_AE_TITLE"\n', "longer than 16"),
        ("unknown_setting = 1\n", "unknown_setting"),
        ('[nodes.x]\nhost = "h"\n', "ae_title"),
    ],
)
def test_bad_config_is_a_config_error(config, text, message):
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Settings.load()


def test_unknown_node_lists_the_known_ones(config):
    with pytest.raises(UnknownNode, match="known: pacs"):
        Settings.load().resolve_node("nope")


def test_inline_address_bypasses_the_table(config):
    assert Settings.load().resolve_node("dicom://X@h:5").address == "X@h:5"
    with pytest.raises(InvalidAddress):
        Settings.load().resolve_node("dicom://X@h:99999")


def test_settings_read_the_same_file_as_load(config):
    assert Settings().ae_title == "FROMFILE"
    assert Settings().resolve_node("pacs").ae_title == "TELEMIS"
    assert Settings(ae_title="DIRECT").ae_title == "DIRECT"


def test_retries_are_settings(config, monkeypatch):
    monkeypatch.setenv("PACSKIT_RETRIES", "3")
    monkeypatch.setenv("PACSKIT_RETRY_BACKOFF", "0.1")
    settings = Settings()
    assert (settings.retries, settings.retry_backoff) == (3, 0.1)
    assert Settings.load().retries == 3


def test_an_application_uses_its_own_prefix_and_file(config, monkeypatch, tmp_path):
    from pydantic_settings import SettingsConfigDict

    (tmp_path / "clinic.toml").write_text('ae_title = "CLINICFILE"\nport = 2000\n')

    class ClinicSettings(Settings):
        model_config = SettingsConfigDict(env_prefix="CLINIC_DICOM_", toml_file=tmp_path / "clinic.toml")

    monkeypatch.setenv("CLINIC_DICOM_AE_TITLE", "CLINIC")
    monkeypatch.setenv("PACSKIT_AE_TITLE", "IGNORED")
    settings = ClinicSettings()
    assert (settings.ae_title, settings.port) == ("CLINIC", 2000)
    assert ClinicSettings.load().port == 2000
