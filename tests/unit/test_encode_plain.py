"""C-FIND response identifiers written directly, without pydicom's writer, must be the
bytes pydicom writes: checked on what the archive index answers for the generated corpus
and pydicom's test files, at every level, in both Little Endian syntaxes."""

from __future__ import annotations

import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pynetdicom.dsutils import encode

from pacskit.archive.index import Index
from pacskit.encoded import encode_plain
from pacskit.query import LEVEL_KEYS, LEVELS, Level, Query
from pacskit.testing.corpus import generate_corpus
from pacskit.testing.samples import pydicom_samples


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain")
    opened = Index.open(f"sqlite:///{root}/index.db")
    corpus = generate_corpus(root / "corpus", patients=2, studies_per_patient=2, series_per_study=2,
                             instances_per_series=2)
    for path in [*(i.path for i in corpus), *pydicom_samples()]:
        header = dcmread(path, stop_before_pixels=True)
        opened.add(header, path=str(path), size=1, transfer_syntax=str(header.file_meta.TransferSyntaxUID))
    yield opened
    opened.close()


@pytest.mark.parametrize("names", [True, False], ids=["with names", "without names"])
@pytest.mark.parametrize("level", list(Level))
def test_identifiers_are_written_as_pydicom_writes_them(index, level, names):
    keys = [k for upper in LEVELS[: LEVELS.index(level) + 1] for k in LEVEL_KEYS[upper]
            if names or dictionary_VR(k) != "PN"]
    plain = 0
    for identifier in index.find(Query.build(level.value), keys=keys):
        for implicit in (True, False):
            fast = encode_plain(identifier, implicit=implicit)
            if fast is not None:
                plain += 1
                assert fast == encode(identifier, implicit, True, False), identifier
    assert plain or names, "the direct path was never taken"


def test_what_is_not_plain_is_left_to_pydicom():
    identifier = dcmread(pydicom_samples()[0], stop_before_pixels=True)
    assert encode_plain(identifier, implicit=True) is None
