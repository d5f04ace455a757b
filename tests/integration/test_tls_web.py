"""DICOMweb over HTTPS: ``pacskit serve`` with ``tls.https``, searched and retrieved by
pacskit's own client and by dicomweb-client; an untrusted server certificate is a
one-line error unless ``--insecure`` says otherwise."""

from __future__ import annotations

import json

import pytest
from clirunner import assert_one_line_error, run_cli
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session
from served import served_archive

from pacskit.settings import TlsSettings
from pacskit.testing.certificates import make_certificates


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def https_archive(tmp_path, pki, corpus):
    tls = TlsSettings(certificate=pki.server.certificate, key=pki.server.key, ca=pki.ca, https=True)
    with served_archive(tmp_path, [c.path for c in corpus], tls=tls) as archive:
        yield f"https://127.0.0.1:{archive.settings.web.port}/dicom-web"


def test_pacskit_searches_and_retrieves_over_https(https_archive, pki, corpus, tmp_path):
    studies = sorted({c.study_uid for c in corpus})
    found = run_cli("find", https_archive, "-f", "json", "--tls-ca", pki.ca)
    assert found.returncode == 0, found.stderr
    assert sorted(row["StudyInstanceUID"] for row in json.loads(found.stdout)) == studies
    got = run_cli("get", https_archive, "--study-uid", studies[0], "-o", tmp_path, "-f", "json", "--tls-ca", pki.ca)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["written"] == sum(1 for c in corpus if c.study_uid == studies[0])


def test_an_untrusted_https_server_is_refused_unless_insecure(https_archive, pki):
    untrusted = run_cli("find", https_archive, "--tls-ca", pki.untrusted_ca)
    assert_one_line_error(untrusted, 18, "TLS refused: its certificate")
    insecure = run_cli("find", https_archive, "-f", "json", "--tls-ca", pki.untrusted_ca, "--insecure")
    assert insecure.returncode == 0, insecure.stderr
    assert json.loads(insecure.stdout)
    plain = run_cli("find", https_archive.replace("https:", "http:"))
    assert plain.returncode == 15, plain.stderr


def test_dicomweb_client_over_https(https_archive, pki, corpus):
    session = create_session()
    session.verify = str(pki.ca)
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise win over session.verify
    client = DICOMwebClient(https_archive, session=session)
    studies = client.search_for_studies()
    assert sorted(s["0020000D"]["Value"][0] for s in studies) == sorted({c.study_uid for c in corpus})
