"""A large instance spooled to a file is written exactly as the same instance held in
memory would be: same bytes, names withheld the same way."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from pacskit.layout import Layout
from pacskit.privacy import PATIENT_NAME_KEYWORDS
from pacskit.storage import FolderSink
from pacskit.testing.samples import pydicom_samples

LAYOUT = Layout("{SOPInstanceUID}.dcm")


def written(data: bytes, folder: Path, spooled: bool) -> bytes:
    sink = FolderSink(folder, LAYOUT)
    if spooled:
        with tempfile.TemporaryFile() as spool:
            spool.write(data)
            spool.seek(0)
            path = sink.write_encoded(spool).path
    else:
        path = sink.write_encoded(data).path
    return path.read_bytes()


def with_meta(path: Path) -> bool:
    return dcmread(path, stop_before_pixels=True).file_meta.get("TransferSyntaxUID") is not None


@pytest.mark.parametrize("sample", [p for p in pydicom_samples() if with_meta(p)], ids=lambda p: p.name)
def test_a_spooled_instance_is_written_as_it_would_be_from_memory(sample, tmp_path):
    data = sample.read_bytes()
    assert written(data, tmp_path / "spooled", True) == written(data, tmp_path / "memory", False)


def test_a_name_hidden_after_the_pixel_data_is_still_withheld(tmp_path):
    source = tmp_path / "source.dcm"
    shutil.copy(next(p for p in pydicom_samples() if p.name == "CT_small.dcm"), source)
    ds = dcmread(source)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    hidden = Dataset()
    hidden.PatientName = "Hidden^Name"
    ds.add_new(0x7FE10010, "LO", "PRIVATE")
    ds.add_new(0x7FE11001, "SQ", Sequence([hidden]))
    ds.save_as(source)
    data = source.read_bytes()
    assert b"Hidden^Name" in data
    for spooled in (True, False):
        out = written(data, tmp_path / str(spooled), spooled)
        assert b"Hidden^Name" not in out
        got = dcmread(tmp_path / str(spooled) / f"{ds.SOPInstanceUID}.dcm")
        assert got.PixelData == ds.PixelData
        assert all(not got.get(k) for k in PATIENT_NAME_KEYWORDS)
