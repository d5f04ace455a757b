"""The transport over TLS: bytes the TLS layer has decrypted but we have not read are
"pending" (what C-CANCEL detection asks), though the socket has nothing left to read."""

from __future__ import annotations

import select
import socket
import struct
import threading

import pytest

from pacskit.net.tls import client_context, server_context
from pacskit.net.transport import Transport
from pacskit.settings import TlsSettings
from pacskit.testing.certificates import make_certificates


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("pki"))


def pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def test_a_pdu_held_decrypted_by_the_tls_layer_is_pending(pki):
    """A 300 kB P-DATA-TF and an A-RELEASE-RQ in one write: the last TLS record holds
    the end of the first and all of the second. Once the first is read, the second is
    in the SSL object only — select() sees nothing, has_pending() must."""
    settings = TlsSettings(certificate=pki.server.certificate, key=pki.server.key, ca=pki.ca)
    big, small = pdu(0x04, bytes(300_000)), pdu(0x05, bytes(4))
    listener = socket.create_server(("127.0.0.1", 0))
    written = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        server = Transport(conn, "client", 10)
        server.accept_tls(server_context(settings), 10)
        server.write(big + small)
        written.set()
        server.read_pdu(1 << 20)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_settings = TlsSettings(certificate=pki.client.certificate, key=pki.client.key, ca=pki.ca)
    client = Transport.connect("127.0.0.1", listener.getsockname()[1], label="server", connect_timeout=10,
                               timeout=10, context=client_context(client_settings))
    assert client.tls
    assert written.wait(10)
    pdu_type, data = client.read_pdu(1 << 20)
    assert (pdu_type, len(data)) == (0x04, len(big))
    assert not select.select([client.sock], [], [], 0.2)[0]
    assert client.has_pending()
    assert client.read_pdu(1 << 20) == (0x05, bytearray(small))
    assert not client.has_pending()
    client.write(pdu(0x06, bytes(4)))
    thread.join(10)
    client.close()
    listener.close()
