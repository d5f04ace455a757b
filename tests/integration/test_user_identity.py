"""User Identity negotiation (PS3.7 D.3.3.7) against a real ``pacskit serve``: DCMTK's
``storescu --user/--password/--jwt`` and pacskit's own client accepted or rejected as the
users and tokens of ``[web]`` say, per-user permissions beside the peer's, the positive
response when asked for, and no password or token in any log."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from clirunner import assert_one_line_error, run_cli
from serve_process import ARCHIVE_AET, CLIENT_AET, ServeProcess

from pacskit import Client
from pacskit.level_queries import InstanceQuery
from pacskit.settings import Settings
from pacskit.testing.peers import StoreSCP, peer_env, require

PASSWORD = "wonder-land-42"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYXJvbCJ9.c2lnbmF0dXJlLW9mLWNhcm9s"
CONFIG = f"""
[web]
tokens = ["{TOKEN}"]

[web.users.alice]
password = "{PASSWORD}"

[web.users.bob]
password = "builder-7"
allow = ["echo"]
"""


def serve(tmp_path: Path, extra: str = "", **options) -> ServeProcess:
    config = tmp_path / "serve.toml"
    config.write_text(CONFIG + extra)
    return ServeProcess(tmp_path / "data", settings={"CONFIG": str(config)}, **options)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("identity")) as process:
        yield process


def storescu(server: ServeProcess, files: list[Path], *identity: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require("storescu"), "-aet", "STORESCU", "-aec", ARCHIVE_AET, *identity, "127.0.0.1",
                           str(server.port), *map(str, files)],
                          capture_output=True, text=True, env=peer_env(), timeout=60, check=False)


def stored(server: ServeProcess, item) -> bool:
    query = InstanceQuery(study_instance_uid=item.study_uid, series_instance_uid=item.series_uid,
                          sop_instance_uid=item.sop_instance_uid)
    return bool(Client(Settings(ae_title=CLIENT_AET)).find_instances(server.node, query))


def address(server: ServeProcess) -> str:
    return f"dicom://{ARCHIVE_AET}@127.0.0.1:{server.port}"


# -- DCMTK storescu → pacskit serve ---------------------------------------------------------

def test_storescu_with_a_users_password_is_accepted_and_given_the_positive_response(server, corpus):
    item = corpus[0]
    result = storescu(server, [item.path], "--user", "alice", "--password", PASSWORD, "--pos-response")
    assert result.returncode == 0, result.stderr
    assert stored(server, item)


def test_storescu_with_a_wrong_password_is_rejected_and_stores_nothing(server, corpus):
    item = corpus[1]
    result = storescu(server, [item.path], "--user", "alice", "--password", "not-it")
    assert result.returncode != 0
    assert "Association Rejected" in result.stdout + result.stderr, result.stderr
    assert not stored(server, item)


def test_storescu_with_a_user_name_alone_is_rejected(server, corpus):
    result = storescu(server, [corpus[2].path], "--user", "alice")
    assert result.returncode != 0
    assert "Association Rejected" in result.stdout + result.stderr, result.stderr
    assert not stored(server, corpus[2])


def test_storescu_with_a_configured_jwt_is_accepted_and_another_rejected(server, corpus, tmp_path):
    good, bad = tmp_path / "good.jwt", tmp_path / "bad.jwt"
    good.write_text(TOKEN)
    bad.write_text(TOKEN[:-4] + "AAAA")
    assert storescu(server, [corpus[3].path], "--jwt", str(bad)).returncode != 0
    assert not stored(server, corpus[3])
    result = storescu(server, [corpus[3].path], "--jwt", str(good), "--pos-response")
    assert result.returncode == 0, result.stderr
    assert stored(server, corpus[3])


def test_without_an_identity_the_peers_permissions_alone_apply(server):
    assert run_cli("echo", address(server)).returncode == 0


# -- pacskit → pacskit serve ----------------------------------------------------------------

def test_pacskit_with_a_users_password_and_positive_response_is_accepted(server):
    result = run_cli("echo", address(server), "--user", "alice", "--password", PASSWORD, "--pos-response")
    assert result.returncode == 0, result.stderr


def test_pacskit_with_a_wrong_password_is_rejected_with_the_hint(server):
    result = run_cli("echo", address(server), "--user", "alice", "--password", "not-it")
    assert_one_line_error(result, 14, "rejected the association permanently")
    assert "refused the user identity" in result.stderr


def test_pacskit_token_accepted_and_a_wrong_one_rejected(server):
    assert run_cli("echo", address(server), "--token", TOKEN, "--pos-response").returncode == 0
    assert_one_line_error(run_cli("echo", address(server), "--token", "x.y.z"), 14, "user identity")


def test_a_users_allow_list_limits_what_it_may_do_beside_the_peers(server, corpus):
    item = corpus[4]
    assert run_cli("echo", address(server), "--user", "bob", "--password", "builder-7").returncode == 0
    result = run_cli("store", item.path, "--to", address(server), "--user", "bob", "--password", "builder-7")
    assert result.returncode != 0
    assert "0x0124" in result.stdout + result.stderr or "not authorized" in (result.stdout + result.stderr).lower()
    assert not stored(server, item)
    result = run_cli("store", item.path, "--to", address(server), "--user", "alice", "--password", PASSWORD)
    assert result.returncode == 0, result.stderr
    assert stored(server, item)


def test_the_node_table_identity_is_sent(server, tmp_path):
    config = tmp_path / "client.toml"
    config.write_text(f'[nodes.archive]\nae_title = "{ARCHIVE_AET}"\nhost = "127.0.0.1"\nport = {server.port}\n'
                      f'username = "alice"\npassword = "{PASSWORD}"\nidentity_response = true\n')
    assert run_cli("-c", config, "echo", "archive").returncode == 0
    config.write_text(config.read_text().replace(PASSWORD, "not-it"))
    assert_one_line_error(run_cli("-c", config, "echo", "archive"), 14, "user identity")


def test_neither_password_nor_token_is_in_the_debug_log(server):
    result = run_cli("-vv", "echo", address(server), "--user", "alice", "--password", PASSWORD, "--pos-response")
    assert result.returncode == 0, result.stderr
    assert "user identity: username and passcode 'alice', passcode (withheld)" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    result = run_cli("-vv", "echo", address(server), "--token", TOKEN)
    assert "user identity: JSON Web Token (withheld)" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
    assert PASSWORD not in server.log() and TOKEN not in server.log()


def test_a_peer_that_does_not_confirm_the_identity_fails_when_a_response_is_required(tmp_path):
    with StoreSCP(tmp_path / "storescp") as peer:
        plain = run_cli("echo", f"dicom://{peer.ae_title}@127.0.0.1:{peer.port}", "--user", "alice",
                        "--password", PASSWORD)
        assert plain.returncode == 0, plain.stderr
        result = run_cli("echo", f"dicom://{peer.ae_title}@127.0.0.1:{peer.port}", "--user", "alice",
                         "--password", PASSWORD, "--pos-response")
    assert_one_line_error(result, 16, "without confirming the user identity")


def test_require_user_identity_rejects_an_association_without_one(tmp_path):
    with serve(tmp_path, "\n[archive]\nrequire_user_identity = true\n", ready=_listening) as server:
        assert_one_line_error(run_cli("echo", address(server)), 14, "rejected the association permanently")
        assert run_cli("echo", address(server), "--user", "alice", "--password", PASSWORD).returncode == 0


def _listening(server: ServeProcess) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=1):
            return True
    except OSError:
        return False
