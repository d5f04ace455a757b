"""The rules of the web actions (docs/web-actions.md): who may take which action, the CSRF
rule, when a retrieve is a ZIP, and the streamed ZIP itself."""

from __future__ import annotations

import io
import zipfile

import pytest
from starlette.requests import Request

from pacskit.settings import UserConfig, WebSettings
from pacskit.web import csrf
from pacskit.web.download import wants_zip
from pacskit.web.zip_stream import CutShort, Entry, zip_chunks


def request(headers: dict[str, str], query: str = "", host: str = "127.0.0.1:8080") -> Request:
    raw = [(b"host", host.encode()), *((k.lower().encode(), v.encode()) for k, v in headers.items())]
    return Request({"type": "http", "method": "DELETE", "scheme": "http", "path": "/api/studies/1.2",
                    "query_string": query.encode(), "headers": raw, "server": ("127.0.0.1", 8080)})


def test_actions_are_granted_only_by_name():
    web = WebSettings(users={"alice": UserConfig(password="a", actions=["delete"]), "bob": "b"},
                      tokens=["t"], token_actions=["send"], anonymous_actions=["delete"])
    assert web.actions_of("alice") == ["delete"]
    assert web.actions_of("bob") == []
    assert web.actions_of("(token)") == ["send"]
    assert web.actions_of("mallory") == []
    assert web.actions_of(None) == []
    assert WebSettings().actions_of(None) == []
    assert WebSettings(anonymous_actions=["delete", "send"]).actions_of(None) == ["delete", "send"]


@pytest.mark.parametrize(("headers", "refused"), [
    ({}, "X-Pacskit-Action"),
    ({"X-Pacskit-Action": "yes"}, "X-Pacskit-Action"),
    ({"X-Pacskit-Action": "1"}, None),
    ({"X-Pacskit-Action": "1", "Origin": "http://127.0.0.1:8080"}, None),
    ({"X-Pacskit-Action": "1", "Origin": "https://viewer.example"}, None),
    ({"X-Pacskit-Action": "1", "Origin": "http://127.0.0.1:8081"}, "127.0.0.1:8081"),
    ({"X-Pacskit-Action": "1", "Origin": "null"}, "'null'"),
])
def test_the_csrf_rule(headers, refused):
    reason = csrf.refusal(request(headers), ["https://viewer.example"])
    assert (reason is None) if refused is None else (refused in reason)


def test_a_wildcard_cors_origin_does_not_open_actions_to_every_origin():
    assert "evil" in csrf.refusal(request({"X-Pacskit-Action": "1", "Origin": "http://evil"}), ["*"])


@pytest.mark.parametrize(("headers", "query", "zipped"), [
    ({}, "", False),
    ({"Accept": "application/zip"}, "", True),
    ({"Accept": 'multipart/related; type="application/dicom", application/zip'}, "", False),
    ({"Accept": "application/zip;q=0.5, */*"}, "", False),
    ({"Accept": "*/*"}, "accept=application/zip", True),
    ({"Accept": "application/zip"}, "accept=application/dicom", False),
])
def test_when_a_retrieve_is_a_zip(headers, query, zipped):
    assert wants_zip(request(headers, query)) is zipped


def test_a_streamed_zip_holds_its_members_byte_for_byte(tmp_path):
    first, second = tmp_path / "a.dcm", tmp_path / "b.dcm"
    first.write_bytes(bytes(range(256)) * 5000)
    second.write_bytes(b"")
    chunks = list(zip_chunks([Entry("A/1", first), Entry("A/2", second), Entry("DICOMDIR", data=b"dir")],
                             chunk_size=4096))
    assert max(len(c) for c in chunks) < 8192
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        assert {n: archive.read(n) for n in archive.namelist()} == {
            "A/1": first.read_bytes(), "A/2": b"", "DICOMDIR": b"dir"}
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())


def test_a_member_gone_cuts_the_zip_short_before_its_central_directory(tmp_path):
    present = tmp_path / "a.dcm"
    present.write_bytes(b"x" * 10000)
    sent = bytearray()
    with pytest.raises(CutShort, match="No such file"):
        for chunk in zip_chunks([Entry("1", present), Entry("2", tmp_path / "gone.dcm")]):
            sent += chunk
    assert sent
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(bytes(sent)))
