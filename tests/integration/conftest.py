"""Real peers for the integration tests, on free loopback ports.

A missing peer fails the test that needs it, loudly: `make test` installs them.
"""

from __future__ import annotations

import tempfile

import pytest

from pacskit.testing.corpus import generate_corpus
from pacskit.testing.peers import DcmQrSCP, Orthanc, StoreSCP, free_port

OUR_AET = "PACSKIT"


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A small synthetic corpus: 2 patients × 2 studies × 2 series × 3 instances."""
    root = tmp_path_factory.mktemp("corpus")
    return generate_corpus(root, patients=2, studies_per_patient=2, series_per_study=2,
                           instances_per_series=3, seed=7)


@pytest.fixture(scope="session")
def corpus_dir(corpus):
    """The folder holding :func:`corpus`."""
    return corpus[0].path.parents[3]


@pytest.fixture
def storescp(tmp_path):
    """DCMTK storescp accepting every transfer syntax, writing under its ``output_dir``."""
    with StoreSCP(tmp_path / "storescp") as peer:
        yield peer


@pytest.fixture(scope="module")
def dcmqrscp(tmp_path_factory, corpus_dir):
    """DCMTK dcmqrscp holding the corpus."""
    with DcmQrSCP(tmp_path_factory.mktemp("dcmqrscp")) as peer:
        peer.load([corpus_dir])
        yield peer


@pytest.fixture(scope="module")
def our_port():
    """The port of our storage SCP for C-MOVE to ourselves."""
    return free_port()


@pytest.fixture(scope="module")
def moving_dcmqrscp(tmp_path_factory, corpus_dir, our_port):
    """A dcmqrscp holding the corpus that knows pacskit (AE title PACSKIT, ``our_port``)
    as a C-MOVE destination and offers no C-GET."""
    peer = DcmQrSCP(tmp_path_factory.mktemp("moving"), ae_title="MOVESCP",
                    move_destinations={OUR_AET: ("127.0.0.1", our_port)})
    peer.extra_args = ["--disable-get"]
    with peer:
        peer.load([corpus_dir])
        yield peer


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory, corpus_dir):
    """Orthanc with DICOMweb, holding the corpus."""
    with Orthanc(tmp_path_factory.mktemp("orthanc")) as peer:
        peer.load([corpus_dir])
        yield peer


@pytest.fixture(scope="module")
def orthanc_moving(orthanc, our_port):
    """:func:`orthanc` knowing pacskit (AE title PACSKIT, ``our_port``) as a C-MOVE destination."""
    orthanc.add_modality("pacskit", OUR_AET, "127.0.0.1", our_port)
    return orthanc


@pytest.fixture
def spools(monkeypatch):
    """Every temporary file opened during the test (large instances are spooled to them)."""
    opened = []
    temporary_file = tempfile.TemporaryFile

    def counted(*args, **kwargs):
        opened.append(temporary_file(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(tempfile, "TemporaryFile", counted)
    return opened
