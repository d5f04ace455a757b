"""The test peers themselves: a peer whose chosen port is taken before it binds it
starts on another one instead of failing the test that needs it."""

from __future__ import annotations

import socket

from pacskit.testing.peers import StoreSCP, echoscu


def test_a_peer_whose_port_was_taken_meanwhile_starts_on_another(tmp_path):
    peer = StoreSCP(tmp_path / "storescp")
    taken = peer.port
    with socket.create_server(("127.0.0.1", taken)), peer:
        assert peer.port != taken
        assert echoscu(peer.ae_title, peer.host, peer.port)
    assert "already in use" in peer.log_path.read_text().lower()
