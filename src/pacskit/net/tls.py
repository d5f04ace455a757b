"""DICOM TLS (PS3.15 Annex B): the :class:`ssl.SSLContext` of each BCP 195 profile, for
either role, and what a failed handshake means in one line.

The three profiles are DCMTK's (``dcmtls/tlsciphr.cc``, ``DcmTLSSecurityProfile``), less
what pacskit never negotiates: TLS 1.0 and 1.1, and cipher suites without AEAD (DCMTK's
BCP 195 profile keeps ``TLS_RSA_WITH_AES_128_CBC_SHA`` and a fallback to TLS 1.0 for
older peers).

============  ==========  ===============================================================
profile       DCMTK       what is negotiated
============  ==========  ===============================================================
bcp195-nd     ``+py``     TLS 1.2 with ECDHE/DHE-RSA AES-GCM (PS3.15 B.9), or TLS 1.3
bcp195        ``+px``     the same, plus ECDHE-ECDSA AES-GCM and ChaCha20-Poly1305 (B.8)
bcp195-ex     ``+pz``     TLS 1.2 only, the six AES-GCM suites of B.10 (ECDSA included)
============  ==========  ===============================================================

A TLS 1.3 session's suites are OpenSSL's, all AEAD. As a server, our order of suites
decides (strongest first, as BCP 195 asks); OpenSSL's security level 2 refuses RSA and
DHE keys under 2048 bits.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path
from typing import cast

from pacskit.errors import CertificateRejected, ConfigError, TlsFailure
from pacskit.settings import TlsProfile, TlsSettings

TLS_RECORD_HANDSHAKE = 0x16
TLS_RECORD_ALERT = 0x15
PROTOCOL_VERSION_ALERT = bytes([TLS_RECORD_ALERT, 3, 3, 0, 2, 2, 70])
"""A fatal TLS alert (protocol_version, RFC 8446 6.2): what a TLS listener answers a
peer that speaks plain DICOM, so that it can tell."""

_ND_SUITES = ("ECDHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384",
              "ECDHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256")
_ECDSA_SUITES = ("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256")
_CHACHA_SUITES = ("ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305")

PROFILES: dict[str, tuple[ssl.TLSVersion, ssl.TLSVersion, tuple[str, ...]]] = {
    "bcp195-nd": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, _ND_SUITES),
    "bcp195": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, _ECDSA_SUITES + _ND_SUITES + _CHACHA_SUITES),
    "bcp195-ex": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, _ECDSA_SUITES + _ND_SUITES),
}
"""Each profile: the lowest and highest TLS version, and the TLS 1.2 suites (OpenSSL
names), strongest first."""


def client_context(tls: TlsSettings) -> ssl.SSLContext:
    """The context of our TLS client connections (associations we open, DICOMweb).

    Raises:
        ConfigError: a certificate, key or CA file cannot be read.
    """
    return _context(False, tls.profile, tls.certificate, tls.key, tls.ca, tls.check_hostname, True)


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """The context of our TLS listeners (``pacskit serve``'s TLS port, the C-MOVE
    listener of a TLS retrieve, HTTPS).

    Raises:
        ConfigError: no certificate, or a file cannot be read.
    """
    if tls.certificate is None:
        raise ConfigError("a TLS listener needs a certificate (tls.certificate, --tls-cert)")
    return _context(True, tls.profile, tls.certificate, tls.key, tls.ca, False,
                    tls.require_client_certificate)


def https_context(tls: TlsSettings) -> ssl.SSLContext:
    """The context of ``pacskit serve``'s HTTPS: the same certificate and profile, no
    client certificate asked (DICOMweb authenticates with ``web.users`` and
    ``web.tokens``).

    Raises:
        ConfigError: no certificate, or a file cannot be read.
    """
    if tls.certificate is None:
        raise ConfigError("HTTPS needs a certificate (tls.certificate)")
    return _context(True, tls.profile, tls.certificate, tls.key, None, False, False)


def web_client_context(tls: TlsSettings) -> ssl.SSLContext:
    """The context of DICOMweb requests to ``https://`` URLs: TLS 1.2 or later, AEAD
    suites, the server's certificate checked against ``tls.ca`` (the system's CAs
    when unset) and the URL's host, our certificate shown if one is configured;
    nothing verified with ``tls.insecure``.

    Raises:
        ConfigError: a certificate, key or CA file cannot be read.
    """
    return _context(False, "bcp195", tls.certificate, tls.key, tls.ca, not tls.insecure, not tls.insecure)


@functools.lru_cache(maxsize=16)
def _context(server: bool, profile: TlsProfile, certificate: Path | None, key: Path | None,
             ca: Path | None, check_hostname: bool, verify_peer: bool) -> ssl.SSLContext:
    lowest, highest, suites = PROFILES[profile]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = lowest
    context.maximum_version = highest
    context.set_ciphers(":".join(suites))
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    if server:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_SINGLE_ECDH_USE
    context.check_hostname = check_hostname and not server
    context.verify_mode = ssl.CERT_REQUIRED if verify_peer else ssl.CERT_NONE
    try:
        if verify_peer:
            if ca is not None:
                context.load_verify_locations(cafile=str(ca))
            else:
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH)
        if certificate is not None:
            context.load_cert_chain(str(certificate), str(key) if key is not None else None)
    except FileNotFoundError as exc:
        raise ConfigError(f"TLS: {exc.filename} does not exist") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"TLS: cannot load the certificate, key or CA file: {exc.reason or exc}") from None
    except OSError as exc:
        raise ConfigError(f"TLS: cannot read {exc.filename}: {exc.strerror}") from None
    return context


_VERIFY_MEANINGS = {
    10: "its certificate has expired",
    9: "its certificate is not yet valid",
    18: "its certificate is self-signed and not trusted",
    19: "its certificate chain ends at a CA we do not trust (tls.ca, --tls-ca)",
    20: "its certificate is signed by a CA we do not trust (tls.ca, --tls-ca)",
    21: "its certificate is signed by a CA we do not trust (tls.ca, --tls-ca)",
    62: "its certificate does not name the host we called",
    64: "its certificate does not name the IP address we called",
}

_ALERTS = {
    "CERTIFICATE_REQUIRED": "it requires a client certificate (tls.certificate, --tls-cert)",
    "HANDSHAKE_FAILURE": "no TLS version or cipher suite in common (or it requires a client certificate)",
    "UNKNOWN_CA": "it does not trust our certificate",
    "BAD_CERTIFICATE": "it does not accept our certificate",
    "CERTIFICATE_EXPIRED": "it says our certificate has expired",
    "PROTOCOL_VERSION": "no TLS version in common",
    "INSUFFICIENT_SECURITY": "no cipher suite in common",
    "NO_PROTOCOLS_AVAILABLE": "no TLS version in common",
    "NO_CIPHERS_AVAILABLE": "no cipher suite in common",
    "NO_SHARED_CIPHER": "no cipher suite in common",
    "UNSUPPORTED_PROTOCOL": "no TLS version in common",
    "WRONG_VERSION_NUMBER": "the peer does not speak TLS on this port",
    "PACKET_LENGTH_TOO_LONG": "the peer does not speak TLS on this port",
    "RECORD_LAYER_FAILURE": "the peer does not speak TLS on this port",
    "UNEXPECTED_EOF_WHILE_READING": "the peer closed the connection during the TLS handshake",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the peer sent no client certificate",
}


def meaning(exc: ssl.SSLError) -> str:
    """What a TLS error says, in words a user can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _VERIFY_MEANINGS.get(exc.verify_code, exc.verify_message or "its certificate does not verify")
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "the peer closed the TLS connection (it may require a client certificate, or not trust ours)"
    reason = str(exc.reason or "")
    for key, text in _ALERTS.items():
        if key in reason.upper().replace(" ", "_") or reason.upper().endswith(key.replace("_", " ")):
            return text
    if reason.upper().startswith(("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_")):
        return f"it sent the alert {reason.split('ALERT_', 1)[1].lower().replace('_', ' ')}"
    return reason.lower().replace("_", " ") if reason else str(exc)


def failure(label: str, exc: ssl.SSLError) -> TlsFailure:
    """The one-line error of a TLS failure with ``label`` (the peer)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CertificateRejected(f"{label}: TLS refused: {meaning(exc)}")
    return TlsFailure(f"{label}: TLS failed: {meaning(exc)}")


def peer_subject(sock: ssl.SSLSocket) -> str:
    """The subject of the peer's verified certificate, ``CN=...,O=...``, or ""."""
    try:
        certificate = sock.getpeercert()
    except (ValueError, ssl.SSLError):
        return ""
    if not certificate:
        return ""
    # typeshed types every value of the peer-certificate dict as one union; "subject" is RDNs
    subject = cast("tuple[tuple[tuple[str, str], ...], ...]", certificate.get("subject", ()))
    parts = [f"{_SHORT_NAMES.get(name, name)}={value}" for rdn in subject for name, value in rdn]
    return ",".join(parts)


_SHORT_NAMES = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
                "localityName": "L", "stateOrProvinceName": "ST"}
