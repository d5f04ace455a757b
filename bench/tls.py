"""C-STORE over DICOM TLS (BCP 195 non-downgrading, DCMTK's ``+py``): DCMTK ``storescu
+tls`` and ``pacskit store --tls``, one association each, into the same DCMTK ``storescp
+tls``; certificates made once per run by :mod:`pacskit.testing.certificates`."""

from __future__ import annotations

from pathlib import Path

from bench.corpora import Corpus
from bench.runs import Timing, pacskit, timed_stores
from pacskit import Client, Node, Settings
from pacskit.settings import TlsSettings
from pacskit.testing.certificates import Certificates, make_certificates
from pacskit.testing.peers import StoreSCP, dcmtk_tls, require

PDU = 131072


def tls_storescp(root: Path) -> tuple[StoreSCP, Certificates]:
    """A storescp on TLS only (``+py``, client certificates required), and the PKI."""
    pki = make_certificates(root / "pki")
    scp = StoreSCP(root / "tls-storescp").use_tls(
        dcmtk_tls(pki.server.key, pki.server.certificate, pki.ca),
        dcmtk_tls(pki.client.key, pki.client.certificate, pki.ca))
    return scp, pki


def store_runs(corpus: Corpus, scp: StoreSCP, pki: Certificates) -> list[Timing]:
    """DCMTK storescu +tls, pacskit store --tls and the library, into ``scp``."""
    ours = ["--tls-cert", pki.client.certificate, "--tls-key", pki.client.key, "--tls-ca", pki.ca]
    runs = {
        "DCMTK storescu +tls": [require("storescu"), "-aec", scp.ae_title, "+sd", "+r", "-nh", "--max-pdu", str(PDU),
                                *dcmtk_tls(pki.client.key, pki.client.certificate, pki.ca),
                                scp.host, str(scp.port), str(corpus.path)],
        "pacskit store --tls": pacskit("--max-pdu", PDU, "store", corpus.path, "--to", scp.address, *ours),
    }
    node = Node(ae_title=scp.ae_title, host=scp.host, port=scp.port, tls=True)
    client = Client(Settings(max_pdu=PDU, tls=TlsSettings(certificate=pki.client.certificate, key=pki.client.key,
                                                          ca=pki.ca)))
    return timed_stores(corpus, scp, runs, client, node)
