"""C-ECHO against real peers: DCMTK storescp, DCMTK dcmqrscp and Orthanc."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest
from clirunner import assert_one_line_error, run_cli
from pynetdicom import build_context
from pynetdicom.sop_class import Verification

from pacskit import AsyncClient, Client, Node, Settings
from pacskit.errors import AssociationRejected, ConnectionRefused, HostNotFound, NetworkTimeout
from pacskit.net import associate
from pacskit.net.commands import STATUS, c_echo_rq
from pacskit.net.scp import storage_scp


def address(peer) -> str:
    return f"dicom://{peer.ae_title}@{peer.host}:{peer.port}"


@pytest.fixture
def peers(storescp, dcmqrscp, orthanc):
    return {"storescp": storescp, "dcmqrscp": dcmqrscp, "orthanc": orthanc}


@pytest.mark.parametrize("name", ["storescp", "dcmqrscp", "orthanc"])
def test_library_echo_succeeds_against_every_peer(peers, name):
    peer = peers[name]
    result = Client(Settings()).echo(Node(ae_title=peer.ae_title, host=peer.host, port=peer.port))
    assert result.status == 0
    assert 0 < result.rtt_ms < 1000


def test_async_client_echoes_several_peers_concurrently(peers):
    client = AsyncClient(Settings())

    async def main():
        return await asyncio.gather(*(client.echo(address(p)) for p in peers.values()))

    results = asyncio.run(main())
    assert [r.status for r in results] == [0, 0, 0]


def test_cli_echo_table_and_json_with_named_and_inline_nodes(peers, tmp_path):
    orthanc = peers["orthanc"]
    (tmp_path / "pacskit.toml").write_text(
        f'[nodes.archive]\nae_title = "{orthanc.ae_title}"\nhost = "{orthanc.host}"\nport = {orthanc.port}\n'
    )
    table = run_cli("echo", "archive", address(peers["storescp"]), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "archive" in table.stdout and orthanc.ae_title in table.stdout
    assert table.stdout.count("success") == 2

    listed = run_cli("nodes", "--format", "json", cwd=tmp_path)
    assert json.loads(listed.stdout)[0]["port"] == orthanc.port

    result = run_cli("echo", "archive", address(peers["dcmqrscp"]), "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["ok"] for r in rows] == [True, True]
    assert rows[0]["address"] == f"{orthanc.host}:{orthanc.port}"
    assert all(r["rtt_ms"] > 0 for r in rows)


def test_environment_overrides_the_config_file(peers, tmp_path):
    storescp = peers["storescp"]
    (tmp_path / "pacskit.toml").write_text(
        f'[nodes.x]\nae_title = "{storescp.ae_title}"\nhost = "{storescp.host}"\nport = 1\n'
    )
    refused = run_cli("echo", "x", cwd=tmp_path)
    assert refused.returncode == 12
    fixed = run_cli("echo", "x", cwd=tmp_path, env={"PACSKIT_NODES__X__PORT": str(storescp.port)})
    assert fixed.returncode == 0, fixed.stderr


def test_one_failing_node_of_several_is_a_partial_failure(peers):
    result = run_cli("echo", address(peers["storescp"]), "dicom://NOBODY@127.0.0.1:1")
    assert_one_line_error(result, 26, "1 of 2 nodes")
    assert "success" in result.stdout and "refused" in result.stdout


def test_rejected_association_shows_the_reason(dcmqrscp):
    wrong = f"dicom://NOT_ITS_AET@{dcmqrscp.host}:{dcmqrscp.port}"
    with pytest.raises(AssociationRejected) as caught:
        Client(Settings()).echo(wrong)
    assert caught.value.reason == 7
    assert_one_line_error(run_cli("echo", wrong), 14, "called AE title not recognised")


@pytest.fixture
def silent_peer():
    """A TCP server that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_peer_that_never_answers_times_out(silent_peer):
    target = f"dicom://SILENT@127.0.0.1:{silent_peer}"
    with pytest.raises(NetworkTimeout):
        Client(Settings(acse_timeout=1)).echo(target)
    assert_one_line_error(run_cli("--acse-timeout", "1", "echo", target), 13, "within 1 s")


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["echo", "no-such-node"], 4, "unknown node 'no-such-node'"),
        (["echo", "dicom://SEVENTEEN_CHARS_AE@127.0.0.1:104"], 5, "longer than 16"),
        (["echo", "dicom://A\\B@127.0.0.1:104"], 5, "backslash"),
        (["echo", "dicom://A@127.0.0.1:99999"], 5, "out of range"),
        (["echo", "dicom://A@127.0.0.1"], 12, "connection refused"),
        (["echo", "dicom://A@no-such-host.invalid:104"], 11, "not found"),
        (["--aet", "FAR_TOO_LONG_CALLING_AE", "echo", "dicom://A@127.0.0.1:104"], 3, "longer than 16"),
    ],
)
def test_bad_input_gets_one_line_and_its_exit_code(args, code, text):
    assert_one_line_error(run_cli(*args), code, text)


def test_library_maps_network_failures():
    client = Client(Settings())
    with pytest.raises(ConnectionRefused):
        client.echo("dicom://A@127.0.0.1:1")
    with pytest.raises(HostNotFound):
        client.echo("dicom://A@no-such-host.invalid:104")


def test_tcp_nodelay_is_set_on_both_ends_of_our_associations(tmp_path):
    settings = Settings(port=_free_port(), bind_address="127.0.0.1", ae_title="NODELAY")
    node = Node(ae_title="NODELAY", host="127.0.0.1", port=settings.port)
    with (storage_scp(settings, lambda data: None) as server,
          associate(settings, node, [build_context(Verification)]) as assoc):
        ours = assoc.transport.sock
        assert ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        [theirs] = server.connections
        assert theirs.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        response = next(assoc.request(next(iter(assoc.contexts)), c_echo_rq(1)))
        assert response.us(STATUS) == 0


def test_our_storage_scp_answers_only_associations_that_call_its_ae_title():
    settings = Settings(port=_free_port(), bind_address="127.0.0.1", ae_title="MOVEDEST")
    received: list[bytes] = []
    with storage_scp(settings, received.append):
        stranger = Node(ae_title="SOMEONE", host="127.0.0.1", port=settings.port)
        with pytest.raises(AssociationRejected, match="called AE title"):
            Client(settings).echo(stranger)
        assert Client(settings).echo(Node(ae_title="MOVEDEST", host="127.0.0.1", port=settings.port)).status == 0
    assert received == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
