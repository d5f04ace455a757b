"""The BCP 195 profiles as SSL contexts: TLS 1.2 at the lowest, AEAD suites only, and
what distinguishes each (PS3.15 B.9-B.11, DCMTK's +py, +px, +pz)."""

from __future__ import annotations

import ssl

import pytest

from pacskit.errors import ConfigError
from pacskit.net.tls import client_context, server_context, web_client_context
from pacskit.settings import TlsSettings


def suites(context: ssl.SSLContext) -> dict[str, dict]:
    return {c["name"]: c for c in context.get_ciphers()}


@pytest.mark.parametrize("profile", ["bcp195-nd", "bcp195", "bcp195-ex"])
def test_every_profile_refuses_tls_1_0_and_1_1_and_suites_without_aead(profile):
    context = client_context(TlsSettings(profile=profile))
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert all(c["aead"] for c in suites(context).values()), suites(context)
    assert not any("CBC" in name or "SHA1" in name or name.endswith("-SHA") for name in suites(context))


def test_what_each_profile_adds():
    nd = suites(client_context(TlsSettings(profile="bcp195-nd")))
    plain = suites(client_context(TlsSettings(profile="bcp195")))
    extended = client_context(TlsSettings(profile="bcp195-ex"))
    tls12 = {name for name, c in nd.items() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {"ECDHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384",
                     "ECDHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256"}
    assert {"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"} <= set(plain)
    assert extended.maximum_version is ssl.TLSVersion.TLSv1_2
    assert {"ECDHE-ECDSA-AES128-GCM-SHA256", *tls12} <= set(suites(extended))


def test_a_server_needs_a_certificate_and_asks_for_the_clients():
    with pytest.raises(ConfigError, match="needs a certificate"):
        server_context(TlsSettings())
    with pytest.raises(ConfigError, match="does not exist"):
        server_context(TlsSettings(certificate="/nonexistent/cert.pem"))


def test_insecure_only_loosens_the_dicomweb_client():
    assert web_client_context(TlsSettings(insecure=True)).verify_mode is ssl.CERT_NONE
    assert client_context(TlsSettings(insecure=True)).verify_mode is ssl.CERT_REQUIRED


def test_dicoms_addresses_and_the_tls_settings():
    from pacskit.nodes import Node
    from pacskit.settings import NodeConfig, Settings

    assert Node.parse("dicoms://PACS@pacs.example.org:2762").tls
    assert not Node.parse("dicom://PACS@pacs.example.org:104").tls
    settings = Settings(nodes={"pacs": NodeConfig(ae_title="PACS", host="pacs.example.org", tls=True)})
    assert settings.resolve_node("pacs").tls
    assert settings.resolve_node("dicoms://X@h:1").tls
    with pytest.raises(ConfigError, match="tls.port.*needs tls.certificate"):
        Settings.load(None, tls={"port": 2762})
