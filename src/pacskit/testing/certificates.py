"""Certificates for DICOM TLS tests and benchmarks, made with the ``openssl`` command:
a CA, a server certificate for ``localhost`` and ``127.0.0.1``, a client certificate,
an expired one, one naming another host, and a second CA nobody trusts with a server
certificate of its own. RSA 2048 keys, PEM, keys unencrypted."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pacskit.testing.peers import PeerError


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key."""

    certificate: Path
    key: Path


@dataclass(frozen=True)
class Certificates:
    """Everything :func:`make_certificates` writes."""

    ca: Path
    server: KeyPair
    client: KeyPair
    expired: KeyPair
    wrong_host: KeyPair
    untrusted_ca: Path
    untrusted: KeyPair


def make_certificates(folder: Path) -> Certificates:
    """Write a test PKI into ``folder``.

    Raises:
        PeerError: ``openssl`` is not installed or fails.
    """
    if shutil.which("openssl") is None:
        raise PeerError("openssl is not installed (apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    ca = _authority(folder, "ca", "pacskit test CA")
    other = _authority(folder, "untrusted-ca", "pacskit untrusted CA")
    server_names = "subjectAltName=DNS:localhost,IP:127.0.0.1"
    return Certificates(
        ca=ca.certificate,
        server=_issue(folder, "server", "localhost", ca, server_names, "serverAuth,clientAuth"),
        client=_issue(folder, "client", "PACSKIT client", ca, "subjectAltName=DNS:client.test,IP:127.0.0.1",
                      "serverAuth,clientAuth"),
        expired=_issue(folder, "expired", "localhost", ca, server_names, "serverAuth,clientAuth", days=-1),
        wrong_host=_issue(folder, "wrong-host", "elsewhere.test", ca, "subjectAltName=DNS:elsewhere.test",
                          "serverAuth"),
        untrusted_ca=other.certificate,
        untrusted=_issue(folder, "untrusted", "localhost", other, server_names, "serverAuth,clientAuth"),
    )


def _openssl(*args: str | Path) -> None:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PeerError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def _authority(folder: Path, name: str, subject: str) -> KeyPair:
    pair = KeyPair(folder / f"{name}.pem", folder / f"{name}-key.pem")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", pair.key, "-out", pair.certificate,
             "-days", "30", "-subj", f"/O=pacskit tests/CN={subject}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return pair


def _issue(folder: Path, name: str, common_name: str, ca: KeyPair, names: str, usage: str,
           days: int = 30) -> KeyPair:
    pair = KeyPair(folder / f"{name}.pem", folder / f"{name}-key.pem")
    request = folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    extensions.write_text(f"{names}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"
                          "keyUsage=critical,digitalSignature,keyEncipherment\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", pair.key, "-out", request,
             "-subj", f"/O=pacskit tests/CN={common_name}")
    _openssl("x509", "-req", "-in", request, "-CA", ca.certificate, "-CAkey", ca.key, "-CAcreateserial",
             "-out", pair.certificate, "-days", str(days), "-extfile", extensions)
    return pair
