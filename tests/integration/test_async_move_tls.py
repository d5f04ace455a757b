"""C-MOVE to ourselves over DICOM TLS (PS3.15 B.1) on the event loop: Orthanc with
DicomTlsEnabled, our asyncio Storage SCP (pacskit.net.aio_acceptor) listening with TLS;
Orthanc told to reach us without TLS gets nowhere; DCMTK's storescu with an untrusted
certificate, or none, is refused by the handshake and nothing is taken."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from pydicom import dcmread

from pacskit import AsyncClient, Node, Settings
from pacskit.client import study_query
from pacskit.net.aio_acceptor import storage_scp
from pacskit.settings import TlsSettings
from pacskit.testing.certificates import make_certificates
from pacskit.testing.peers import Orthanc, dcmtk_tls, echoscu, free_port, peer_env, require

OUR_AET = "PACSKIT"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def orthanc_tls(tmp_path_factory, corpus_dir, pki):
    """Orthanc speaking only DICOM TLS on its DICOM port, trusting the test CA."""
    peer = Orthanc(tmp_path_factory.mktemp("orthanc-tls"), ae_title="ORTHANCTLS",
                   tls=(pki.server.certificate, pki.server.key, pki.ca))
    with peer:
        peer.load([corpus_dir])
        yield peer


def tls_settings(pki, port: int) -> Settings:
    return Settings(ae_title=OUR_AET, port=port,
                    tls=TlsSettings(certificate=pki.server.certificate, key=pki.server.key, ca=pki.ca))


def tls_node(peer) -> Node:
    return Node(ae_title=peer.ae_title, host="127.0.0.1", port=peer.port, tls=True)


def study_of(corpus):
    study = sorted({c.study_uid for c in corpus})[0]
    return study, [c for c in corpus if c.study_uid == study]


def test_a_move_to_ourselves_over_tls_brings_the_whole_study_from_orthanc(orthanc_tls, pki, corpus, tmp_path):
    study, items = study_of(corpus)
    port = free_port()
    orthanc_tls.add_modality("pacskit", OUR_AET, "127.0.0.1", port, tls=True)

    async def main():
        return await AsyncClient(tls_settings(pki, port)).get(tls_node(orthanc_tls), study_query(study),
                                                              tmp_path / "out", method="move", timeout=60)

    assert not echoscu(orthanc_tls.ae_title, "127.0.0.1", orthanc_tls.port), "Orthanc answers without TLS"
    result = asyncio.run(main())
    assert (result.method, result.status, result.written, result.received) == ("move", "success", len(items),
                                                                                len(items))
    written = {str(dcmread(p).SOPInstanceUID) for p in (tmp_path / "out").rglob("*.dcm")}
    assert written == {c.sop_instance_uid for c in items}


def test_orthanc_reaching_our_tls_listener_without_tls_delivers_nothing(orthanc_tls, pki, corpus, tmp_path):
    study, _ = study_of(corpus)
    port = free_port()
    orthanc_tls.add_modality("pacskit", OUR_AET, "127.0.0.1", port, tls=False)
    settings = tls_settings(pki, port).model_copy(update={"dimse_timeout": 10})

    async def main():
        return await AsyncClient(settings).get(tls_node(orthanc_tls), study_query(study), tmp_path / "out",
                                               method="move", timeout=60)

    try:
        result = asyncio.run(main())
    except Exception as exc:  # noqa: BLE001 - Orthanc's move job fails: either outcome is a refusal
        outcome = str(exc)
    else:
        assert (result.written, result.received) == (0, 0)
        assert result.status != "success"
        outcome = result.status
    assert not list(tmp_path.rglob("*.dcm")), outcome


@pytest.mark.parametrize("certificate", ["trusted", "untrusted", "none"])
def test_our_tls_storage_scp_refuses_a_peer_without_a_valid_certificate(pki, corpus, tmp_path, certificate):
    port = free_port()
    taken: list[bytes] = []
    peer = Node(ae_title="STORESCU", host="127.0.0.1", port=9, tls=True)
    if certificate == "trusted":
        tls = dcmtk_tls(pki.client.key, pki.client.certificate, pki.ca)
    elif certificate == "untrusted":
        tls = dcmtk_tls(pki.untrusted.key, pki.untrusted.certificate, pki.ca)
    else:
        tls = ["+tla", "+cf", str(pki.ca), "+py", "-rc"]

    async def main():
        async with storage_scp(tls_settings(pki, port), lambda data: taken.append(bytes(data)), peer=peer):
            process = await asyncio.create_subprocess_exec(
                require("storescu"), "-aet", "STORESCU", "-aec", OUR_AET, *tls, "127.0.0.1", str(port),
                str(corpus[0].path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=peer_env())
            out, _ = await asyncio.wait_for(process.communicate(), 60)
            return process.returncode, out.decode(errors="replace")

    code, out = asyncio.run(main())
    if certificate == "trusted":
        assert code == 0, out
        assert len(taken) == 1
    else:
        assert code != 0, out
        assert taken == []
