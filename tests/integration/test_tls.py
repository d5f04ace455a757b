"""DICOM TLS (PS3.15 Annex B) with DCMTK in both directions, on the three BCP 195
profiles, and the mismatches a user meets: each a one-line error with its exit code, and
a log line on the server."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pytest
from clirunner import assert_one_line_error, run_cli
from pynetdicom import build_context
from pynetdicom.sop_class import Verification

from pacskit import Client, Node
from pacskit.archive import Archive
from pacskit.archive.maintenance import import_files
from pacskit.errors import AssociationRejected
from pacskit.net.association import Association
from pacskit.net.scp import listen_address, storage_scp
from pacskit.net.ul.negotiation import Proposal
from pacskit.settings import ArchiveSettings, NodeConfig, Settings, TlsSettings, WebSettings
from pacskit.testing.certificates import make_certificates
from pacskit.testing.peers import StoreSCP, dcmtk_tls, echoscu, free_port, peer_env, require

OUR_AET = "PACSKIT"
PROFILES = [("+py", "bcp195-nd"), ("+px", "bcp195"), ("+pz", "bcp195-ex")]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("pki"))


def ours(pki, profile: str = "bcp195-nd") -> list[str]:
    """pacskit's TLS flags: the client certificate, the test CA, ``profile``."""
    return ["--tls-cert", pki.client.certificate, "--tls-key", pki.client.key, "--tls-ca", pki.ca,
            "--tls-profile", profile]


def dcmtk_server(pki, profile: str = "+py") -> list[str]:
    return dcmtk_tls(pki.server.key, pki.server.certificate, pki.ca, profile)


def dcmtk_client(pki, profile: str = "+py") -> list[str]:
    return dcmtk_tls(pki.client.key, pki.client.certificate, pki.ca, profile)


def tls_settings(pki, **fields) -> TlsSettings:
    return TlsSettings(certificate=pki.server.certificate, key=pki.server.key, ca=pki.ca, **fields)


@pytest.fixture
def tls_archive(tmp_path, pki):
    """pacskit serve with a plain port and a TLS port, knowing DCMTK and a TLS storescp
    (as ``TLSSTORE``) as C-MOVE destinations."""
    store_port, our_port = free_port(), free_port()
    settings = Settings(
        ae_title="ARCHIVE", port=free_port(), bind_address="127.0.0.1",
        archive=ArchiveSettings(data_dir=tmp_path / "archive", fsync=False), web=WebSettings(enabled=False),
        tls=tls_settings(pki, port=free_port()),
        nodes={"dcmtk": NodeConfig(ae_title="DCMTK", host="127.0.0.1", port=free_port()),
               "pacskit": NodeConfig(ae_title=OUR_AET, host="127.0.0.1", port=our_port, tls=True),
               "tlsstore": NodeConfig(ae_title="TLSSTORE", host="127.0.0.1", port=store_port, tls=True)})
    with Archive(settings) as archive:
        archive.start()
        archive.store_port, archive.our_port = store_port, our_port
        yield archive


def dcmtk(tool: str, archive: Archive, *args: object, files: tuple[object, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require(tool), "-aet", "DCMTK", "-aec", "ARCHIVE", *map(str, args), "127.0.0.1",
                           str(archive.settings.tls.port), *map(str, files)],
                          capture_output=True, text=True, env=peer_env(), timeout=120, check=False)


# -- pacskit → DCMTK ------------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "profile"), PROFILES)
def test_pacskit_echoes_and_stores_to_dcmtk_on_each_profile(tmp_path, pki, corpus, flag, profile):
    peer = StoreSCP(tmp_path / "storescp").use_tls(dcmtk_server(pki, flag), dcmtk_client(pki, flag))
    with peer:
        echoed = run_cli("echo", peer.address, *ours(pki, profile), "-f", "json", "-v")
        assert echoed.returncode == 0, echoed.stderr
        assert json.loads(echoed.stdout)[0]["ok"] is True
        session = next(line for line in echoed.stderr.splitlines() if line.startswith("I: TLS with"))
        assert "TLSv1.2" in session if flag == "+pz" else "TLSv1.3" in session, session
        assert "GCM" in session and "CN=localhost" in session, session
        stored = run_cli("store", corpus[0].path, corpus[1].path, "--to", peer.address, *ours(pki, profile),
                         "-f", "json")
        assert stored.returncode == 0, stored.stderr
        assert json.loads(stored.stdout)["sent"] == 2
        assert len(peer.received()) == 2


def test_pacskit_finds_gets_moves_and_queries_the_worklist_of_pacskit_serve_over_tls(tls_archive, pki, corpus,
                                                                                     tmp_path):
    """DCMTK's SCPs but storescp and dcmrecv have no TLS (3.6.7): the other services are
    proven against ``pacskit serve``, whose C-MOVE sub-associations to us are TLS too."""
    import_files(tls_archive.ingest, [c.path for c in corpus])
    address = f"dicoms://ARCHIVE@127.0.0.1:{tls_archive.settings.tls.port}"
    study = sorted({c.study_uid for c in corpus})[0]
    count = sum(1 for c in corpus if c.study_uid == study)
    found = run_cli("find", address, "--study-uid", study, "-f", "json", *ours(pki))
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)) == 1
    limited = run_cli("find", address, "--level", "IMAGE", "--limit", "2", "-f", "json", *ours(pki))
    assert limited.returncode == 0, limited.stderr
    assert len(json.loads(limited.stdout)) == 2
    got = run_cli("get", address, "--study-uid", study, "-o", tmp_path / "get", "-f", "json", *ours(pki))
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["written"] == count
    moved = run_cli("--aet", OUR_AET, "--port", tls_archive.our_port, "get", address, "--study-uid", study,
                    "--method", "move", "-o", tmp_path / "move", "-f", "json", *ours(pki))
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["written"] == count
    worklist = run_cli("worklist", address, "-f", "json", *ours(pki))
    assert worklist.returncode == 0, worklist.stderr
    assert json.loads(worklist.stdout) == []


# -- DCMTK → pacskit serve ------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "profile"), PROFILES)
def test_dcmtk_echoes_and_stores_to_pacskit_serve_on_each_profile(tls_archive, pki, corpus, flag, profile):
    assert dcmtk("echoscu", tls_archive, *dcmtk_client(pki, flag)).returncode == 0
    stored = dcmtk("storescu", tls_archive, *dcmtk_client(pki, flag), files=(corpus[0].path,))
    assert stored.returncode == 0, stored.stderr
    assert tls_archive.index.count() == 1


def test_dcmtk_finds_and_pacskit_serve_moves_to_a_tls_destination(tls_archive, pki, corpus, tmp_path):
    """findscu with +tls (getscu and movescu have no TLS in DCMTK 3.6.7); a C-MOVE that
    pacskit asks for goes from the archive to a DCMTK storescp on TLS (a node with
    tls = true), on a TLS sub-association."""
    stored = dcmtk("storescu", tls_archive, *dcmtk_client(pki), "+sd", "+r", files=(corpus[0].path.parents[3],))
    assert stored.returncode == 0, stored.stderr
    study = corpus[0].study_uid
    count = sum(1 for c in corpus if c.study_uid == study)
    found = dcmtk("findscu", tls_archive, *dcmtk_client(pki), "-S", "-k", "QueryRetrieveLevel=STUDY",
                  "-k", f"StudyInstanceUID={study}", "-k", "StudyDate")
    assert found.returncode == 0 and found.stderr.count("Find Response:") == 1, found.stderr
    destination = StoreSCP(tmp_path / "tlsstore", ae_title="TLSSTORE", port=tls_archive.store_port)
    with destination.use_tls(dcmtk_server(pki), dcmtk_client(pki)):
        moved = run_cli("--aet", OUR_AET, "move", f"dicoms://ARCHIVE@127.0.0.1:{tls_archive.settings.tls.port}",
                        "--to", "TLSSTORE", "--study-uid", study, "-f", "json", *ours(pki))
        assert moved.returncode == 0, moved.stderr
        assert json.loads(moved.stdout)["completed"] == count
        assert len(destination.received()) == count


def test_serve_refuses_a_missing_or_untrusted_client_certificate(tls_archive, pki, caplog):
    caplog.set_level(logging.WARNING, logger="pacskit.archive")
    anonymous = dcmtk("echoscu", tls_archive, "+tla", "+cf", pki.ca)
    assert anonymous.returncode != 0
    untrusted = run_cli("echo", f"dicoms://ARCHIVE@127.0.0.1:{tls_archive.settings.tls.port}", "--tls-ca", pki.ca,
                        "--tls-cert", pki.untrusted.certificate, "--tls-key", pki.untrusted.key)
    assert_one_line_error(untrusted, 17, "TLS connection ended: it does not trust our certificate")
    without = run_cli("echo", f"dicoms://ARCHIVE@127.0.0.1:{tls_archive.settings.tls.port}", "--tls-ca", pki.ca)
    assert_one_line_error(without, 17, "TLS connection ended: it requires a client certificate (tls.certificate")
    expired = run_cli("echo", f"dicoms://ARCHIVE@127.0.0.1:{tls_archive.settings.tls.port}", "--tls-ca", pki.ca,
                      "--tls-cert", pki.expired.certificate, "--tls-key", pki.expired.key)
    assert_one_line_error(expired, 17, "TLS connection ended: it says our certificate has expired")
    refusals = [r.getMessage() for r in caplog.records if "TLS connection from 127.0.0.1 refused" in r.getMessage()]
    assert any("the peer sent no client certificate" in m for m in refusals), refusals
    assert any("signed by a CA we do not trust" in m for m in refusals), refusals
    assert any("its certificate has expired" in m for m in refusals), refusals


def test_serve_without_client_certificates_when_configured(tmp_path, pki):
    settings = Settings(ae_title="ARCHIVE", port=free_port(), bind_address="127.0.0.1",
                        archive=ArchiveSettings(data_dir=tmp_path / "a", fsync=False), web=WebSettings(enabled=False),
                        tls=tls_settings(pki, port=free_port(), plain=False, require_client_certificate=False))
    with Archive(settings) as archive:
        archive.start()
        assert dcmtk("echoscu", archive, "+tla", "+cf", pki.ca).returncode == 0
        plain = run_cli("echo", f"dicom://ARCHIVE@127.0.0.1:{settings.port}")
        assert_one_line_error(plain, 12, "connection refused")


@pytest.mark.parametrize("refused", [["-tls1_1"], ["-tls1"], ["-tls1_2", "-cipher", "AES128-SHA"],
                                     ["-tls1_2", "-cipher", "AES256-SHA256"]])
def test_old_tls_versions_and_suites_without_aead_are_refused(tls_archive, pki, refused):
    done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tls_archive.settings.tls.port}",
                           "-cert", pki.client.certificate, "-key", pki.client.key, "-CAfile", pki.ca, *refused],
                          input="", capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
    assert "alert" in done.stderr or "no protocols available" in done.stderr, done.stderr
    assert "Cipher is (NONE)" in done.stdout or "Cipher    : 0000" in done.stdout, done.stdout[-800:]


def test_tls_1_2_and_1_3_are_negotiated(tls_archive, pki):
    for version, expected in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tls_archive.settings.tls.port}",
                               "-cert", pki.client.certificate, "-key", pki.client.key, "-CAfile", pki.ca, version,
                               "-verify_return_error"], input="", capture_output=True, text=True, timeout=30,
                              check=False)
        assert f"Protocol  : {expected}" in done.stdout or f"New, {expected}" in done.stdout, done.stdout[-800:]
        assert "Verify return code: 0 (ok)" in done.stdout


# -- the mismatches -------------------------------------------------------------------------


def test_plain_client_on_a_tls_port_and_tls_client_on_a_plain_port(tls_archive, pki, caplog):
    caplog.set_level(logging.WARNING)
    plain = run_cli("echo", f"dicom://ARCHIVE@127.0.0.1:{tls_archive.settings.tls.port}")
    assert_one_line_error(plain, 17, "answers in TLS: it expects DICOM TLS on port")
    secure = run_cli("echo", f"dicoms://ARCHIVE@127.0.0.1:{tls_archive.settings.port}", *ours(pki))
    assert_one_line_error(secure, 17, "closed the connection during the TLS handshake (does it speak TLS")
    messages = [r.getMessage() for r in caplog.records]
    assert any("the peer speaks plain DICOM on a TLS port" in m for m in messages), messages
    assert any("the peer speaks TLS on a non-TLS port" in m for m in messages), messages
    dcmtk_plain = dcmtk("echoscu", tls_archive)
    assert dcmtk_plain.returncode != 0


@pytest.mark.parametrize(("pair", "host", "exit_code", "text"), [
    ("expired", "127.0.0.1", 18, "TLS refused: its certificate has expired"),
    ("untrusted", "127.0.0.1", 18, "TLS refused: its certificate is signed by a CA we do not trust"),
    ("wrong_host", "localhost", 18, "TLS refused: its certificate does not name the host we called"),
    ("wrong_host", "127.0.0.1", 18, "TLS refused: its certificate does not name the IP address we called"),
])
def test_a_server_certificate_that_does_not_verify(tmp_path, pki, pair, host, exit_code, text):
    keys = getattr(pki, pair)
    peer = StoreSCP(tmp_path / "storescp").use_tls(
        dcmtk_tls(keys.key, keys.certificate, pki.ca, require_peer_certificate=False), ["+tla", "-ic"])
    with peer:
        result = run_cli("echo", f"dicoms://{peer.ae_title}@{host}:{peer.port}", *ours(pki))
        assert_one_line_error(result, exit_code, text)


# -- the C-MOVE listener --------------------------------------------------------------------


def test_the_move_listener_binds_towards_the_peer_and_admits_only_it(pki):
    port = free_port()
    asked = Node(ae_title="MOVESCP", host="127.0.0.1", port=104)
    settings = Settings(ae_title=OUR_AET, port=port)
    assert listen_address(settings, asked) == "127.0.0.1"
    assert listen_address(settings.model_copy(update={"move_bind_address": "0.0.0.0"}), asked) == "0.0.0.0"
    with storage_scp(settings, lambda data: None, peer=asked):
        me = Node(ae_title=OUR_AET, host="127.0.0.1", port=port)
        Client(Settings(ae_title="MOVESCP")).echo(me)
        with pytest.raises(AssociationRejected, match="calling AE title not recognised"):
            Client(Settings(ae_title="INTRUDER")).echo(me)
    with storage_scp(settings.model_copy(update={"move_check_peer": False}), lambda data: None, peer=asked):
        Client(Settings(ae_title="ANYONE")).echo(Node(ae_title=OUR_AET, host="127.0.0.1", port=port))
    tls = tls_settings(pki)
    with storage_scp(settings.model_copy(update={"tls": tls}), lambda data: None,
                     peer=asked.model_copy(update={"tls": True})):
        secure = Node(ae_title=OUR_AET, host="127.0.0.1", port=port, tls=True)
        Client(Settings(ae_title="MOVESCP", tls=TlsSettings(certificate=pki.client.certificate,
                                                            key=pki.client.key, ca=pki.ca))).echo(secure)


def test_serve_takes_its_tls_port_and_certificate_from_the_command_line(tmp_path, pki):
    plain, secure = free_port(), free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pacskit", *map(str, [
                "serve", "--data-dir", tmp_path / "data", "--no-http", "--aet", "ARCHIVE", "--port", plain,
                "--tls-port", secure, "--tls-cert", pki.server.certificate, "--tls-key", pki.server.key,
                "--tls-ca", pki.ca, "--tls-profile", "bcp195-ex"])],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not echoscu("ARCHIVE", "127.0.0.1", secure, tls=dcmtk_client(pki, "+pz")):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert echoscu("ARCHIVE", "127.0.0.1", plain)
        assert f"127.0.0.1:{secure} (DICOM TLS, bcp195-ex, client certificates required)" in log.read_text() \
            or f"0.0.0.0:{secure} (DICOM TLS, bcp195-ex, client certificates required)" in log.read_text()
    finally:
        process.terminate()
        process.wait(10)
    no_certificate = run_cli("serve", "--data-dir", tmp_path / "data", "--no-http", "--tls-port", secure)
    assert_one_line_error(no_certificate, 3, "--tls-port needs a certificate")


def test_shutdown_ends_a_tls_association_in_progress(tls_archive, pki):
    settings = Settings(ae_title="DCMTK", tls=TlsSettings(certificate=pki.client.certificate, key=pki.client.key,
                                                          ca=pki.ca))
    node = Node(ae_title="ARCHIVE", host="127.0.0.1", port=tls_archive.settings.tls.port, tls=True)
    association = Association.connect(settings, node, Proposal("DCMTK", "ARCHIVE", [build_context(Verification)],
                                                               settings.max_pdu, {}, ()))
    try:
        assert len(tls_archive.server.connections) == 1
        started = time.monotonic()
        tls_archive.server.shutdown(grace=0.5)
        while tls_archive.server.connections and time.monotonic() - started < 5:
            time.sleep(0.05)
        assert tls_archive.server.connections == []
        assert time.monotonic() - started < 5
    finally:
        association.close()
