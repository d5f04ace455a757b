"""The index stores each level's attributes as DICOM JSON, and reads the values it keys
on, without pydicom's conversions where a value is plain: it must say exactly what
pydicom says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.datadict import tag_for_keyword

from pacskit.archive.index import COMPUTED_KEYS, _json
from pacskit.encoded import header_dataset, parse_file_meta, plain_text
from pacskit.query import LEVEL_KEYS, Level
from pacskit.testing.corpus import generate_corpus
from pacskit.testing.samples import DATA

INDEXED = frozenset(tag_for_keyword(k) for keys in LEVEL_KEYS.values() for k in keys
                    if tag_for_keyword(k) is not None)
TEXT_KEYS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID",
             "IssuerOfPatientID", "StudyDate", "AccessionNumber", "Modality")
FILES = sorted(p for p in (DATA / "test_files").rglob("*.dcm") if p.stat().st_size < 4 << 20)


def pydicom_json(header: Dataset, level: Level) -> dict:
    part = Dataset()
    for keyword in LEVEL_KEYS[level]:
        if keyword not in COMPUTED_KEYS and keyword in header:
            part[keyword] = header[keyword]
    return part.to_json_dict(bulk_data_threshold=1 << 20)


def readable(path: Path) -> Dataset | None:
    try:
        header = dcmread(path, stop_before_pixels=True, force=True)
        for keyword in (k for keys in LEVEL_KEYS.values() for k in keys):
            if keyword in header:
                header[keyword].to_json_dict(None, 1 << 20)
    except Exception:  # noqa: BLE001 - files pydicom itself cannot convert are not the question
        return None
    return dcmread(path, stop_before_pixels=True, force=True)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_stored_json_is_pydicom_json_for_pydicom_test_files(path):
    header = readable(path)
    if header is None:
        return
    for level in Level:
        assert json.loads(_json(header, level)) == pydicom_json(readable(path), level)
    reference = readable(path)
    for keyword in TEXT_KEYS:
        assert plain_text(header, keyword) == str(reference.get(keyword, "") or ""), keyword


def test_stored_json_of_the_generated_corpus_read_from_memory(tmp_path):
    instances = generate_corpus(tmp_path, patients=2, studies_per_patient=2, series_per_study=2,
                                instances_per_series=2)
    assert len(instances) == 16
    for path in (i.path for i in instances):
        data = path.read_bytes()
        meta, offset = parse_file_meta(data)
        from_memory = header_dataset(data, offset, meta[0x0010], INDEXED)
        for level in Level:
            expected = pydicom_json(dcmread(path, stop_before_pixels=True), level)
            assert json.loads(_json(from_memory, level)) == expected
