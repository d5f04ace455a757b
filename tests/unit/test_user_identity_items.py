"""The User Identity sub-items (PS3.7 D.3.3.7, Tables D.3-14 and D.3-15) as pacskit
encodes and reads them (its own codec as requestor, pynetdicom's as acceptor), who the archive takes them for, and
which identity a requestor sends."""

from __future__ import annotations

import struct

import pytest
from pynetdicom import build_context
from pynetdicom.sop_class import Verification

from pacskit.archive.identities import TOKEN_USER, Identities
from pacskit.errors import ConfigError
from pacskit.net.acceptor import IdentityRefused, Peer
from pacskit.net.association import identity_for
from pacskit.net.ul.negotiation import Proposal, Request, read_acceptance
from pacskit.net.ul.user_identity import (
    JWT,
    USERNAME,
    USERNAME_AND_PASSCODE,
    UserIdentity,
)
from pacskit.nodes import Node
from pacskit.settings import IdentitySettings, Settings, UserConfig, WebSettings

PEER = Peer("MODALITY", "ARCHIVE", "127.0.0.1")


def proposal(identity: UserIdentity | None) -> Proposal:
    return Proposal("MODALITY", "ARCHIVE", [build_context(Verification)], 16384, identity=identity)


def sub_item(pdu: bytes, item_type: int) -> bytes:
    """The first sub-item of ``item_type`` in the user information item (0x50) of an
    A-ASSOCIATE-RQ or -AC, header included."""
    start = pdu.index(b"\x50\x00", 74)
    end = start + 4 + struct.unpack(">H", pdu[start + 2:start + 4])[0]
    offset = start + 4
    while offset < end:
        kind, length = pdu[offset], struct.unpack(">H", pdu[offset + 2:offset + 4])[0]
        if kind == item_type:
            return pdu[offset:offset + 4 + length]
        offset += 4 + length
    raise AssertionError(f"no sub-item 0x{item_type:02X}")


def test_a_username_and_passcode_is_encoded_as_table_d3_14_says():
    item = sub_item(proposal(UserIdentity.of(username="alice", password="pw", response_requested=True)).encode(),
                    0x58)
    assert item == bytes([0x58, 0, 0, 13, USERNAME_AND_PASSCODE, 1]) + b"\x00\x05alice" + b"\x00\x02pw"


def test_a_username_alone_has_an_empty_secondary_field_and_no_response_asked():
    item = sub_item(proposal(UserIdentity.of(username="bob")).encode(), 0x58)
    assert item == bytes([0x58, 0, 0, 9, USERNAME, 0]) + b"\x00\x03bob" + b"\x00\x00"


@pytest.mark.parametrize("identity", [
    UserIdentity.of(username="alice", password="pw", response_requested=True),
    UserIdentity.of(username="bob"),
    UserIdentity.of(token="eyJ.abc.def", response_requested=True),
])
def test_the_acceptor_reads_what_the_requestor_sent(identity):
    assert Request.decode(proposal(identity).encode()).identity == identity


def test_a_request_without_the_item_has_no_identity():
    assert Request.decode(proposal(None).encode()).identity is None


def test_the_positive_response_is_an_empty_0x59_item_only_when_asked_and_accepted():
    asked = proposal(UserIdentity.of(username="alice", password="pw", response_requested=True))
    request = Request.decode(asked.encode())
    ac, _ = request.accept([build_context(Verification)], 16384, identity_accepted=True)
    assert sub_item(ac, 0x59) == bytes([0x59, 0, 0, 2, 0, 0])
    assert read_acceptance(ac, asked).identity_response == b""
    ac, _ = request.accept([build_context(Verification)], 16384)
    assert read_acceptance(ac, asked).identity_response is None
    unasked = proposal(UserIdentity.of(username="alice", password="pw"))
    ac, _ = Request.decode(unasked.encode()).accept([build_context(Verification)], 16384, identity_accepted=True)
    assert read_acceptance(ac, unasked).identity_response is None


def test_the_secret_is_never_in_the_repr_or_description():
    identity = UserIdentity.of(username="alice", password="hunter2")
    token = UserIdentity.of(token="eyJ.secret.sig")
    assert "hunter2" not in repr(identity) and "hunter2" not in identity.description
    assert "secret" not in repr(token) and token.description == "JSON Web Token (withheld)"
    assert identity.description == "username and passcode 'alice', passcode (withheld)"


def test_a_token_wins_over_a_user_name_and_nothing_configured_sends_nothing():
    assert UserIdentity.of(username="alice", password="pw", token="t").kind == JWT
    assert UserIdentity.of() is None and UserIdentity.of(password="pw") is None


def test_the_command_lines_identity_wins_over_the_nodes():
    node = Node(ae_title="PACS", host="127.0.0.1", port=104, username="node-user", password="node-pw")
    assert identity_for(Settings(), node) == UserIdentity(USERNAME_AND_PASSCODE, b"node-user", b"node-pw")
    chosen = Settings(identity=IdentitySettings(user="cli", password="cli-pw", response=True))
    assert identity_for(chosen, node) == UserIdentity(USERNAME_AND_PASSCODE, b"cli", b"cli-pw", True)
    assert identity_for(Settings(), Node(ae_title="PACS", host="127.0.0.1")) is None


def identities(**archive) -> Identities:
    web = WebSettings(users={"alice": "pw", "bob": UserConfig(password="b-pw", allow=["echo"])}, tokens=["tok"])
    return Identities(Settings(web=web, archive=archive))


def test_the_archive_takes_a_users_passcode_or_a_token_and_refuses_the_rest():
    check = identities()
    assert check.authenticate(PEER, UserIdentity.of(username="alice", password="pw")) == "alice"
    assert check.authenticate(PEER, UserIdentity.of(username="bob", password="b-pw")) == "bob"
    assert check.authenticate(PEER, UserIdentity.of(token="tok")) == TOKEN_USER
    assert check.authenticate(PEER, None) == ""
    for refused in (UserIdentity.of(username="alice", password="nope"), UserIdentity.of(username="eve", password="pw"),
                    UserIdentity.of(username="alice"), UserIdentity.of(token="other"), UserIdentity(4, b"<saml/>")):
        with pytest.raises(IdentityRefused):
            check.authenticate(PEER, refused)


def test_require_user_identity_refuses_an_association_without_one():
    with pytest.raises(IdentityRefused, match="no user identity"):
        identities(require_user_identity=True).authenticate(PEER, None)


def test_without_users_or_tokens_an_identity_is_ignored():
    assert Identities(Settings()).authenticate(PEER, UserIdentity.of(username="x", password="y")) == ""


def test_a_users_permissions_default_to_every_operation():
    web = WebSettings(users={"alice": "pw", "bob": UserConfig(password="b-pw", allow=["echo"])})
    assert web.permissions("bob") == ["echo"] and "store" in web.permissions("alice")
    assert web.passwords == {"alice": "pw", "bob": "b-pw"}
    assert "b-pw" not in repr(web)


def test_a_password_without_a_user_name_is_a_configuration_error():
    with pytest.raises(ConfigError, match=r"needs a user name \(--user\)"):
        Settings.load(None, identity={"password": "pw"})
