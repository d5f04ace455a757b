"""Rendered images go through pydicom's Modality and VOI LUT stages (PS3.3 C.11): the
instance's VOI LUT Function, its VOI LUT Sequence, an asked window over both; thumbnails
fit their viewport. And the web page's DICOM JSON loses the patient's names."""

from __future__ import annotations

from io import BytesIO

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from pacskit.web.page import strip_names
from pacskit.web.render import render

STORED = [0, 1000, 2000, 3000, 4095]


def image(**attributes) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, len(STORED), 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.array(STORED, dtype="<u2").tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def shown(ds: Dataset, **options) -> list[int]:
    return np.asarray(Image.open(BytesIO(render(ds, 1, "image/png", **options)))).ravel().tolist()


def test_linear_exact_maps_the_window_edges_to_black_and_white():
    assert shown(image(WindowCenter=2000, WindowWidth=2000, VOILUTFunction="LINEAR_EXACT")) == [0, 0, 128, 255, 255]


def test_sigmoid_is_the_instances_function_not_a_linear_ramp():
    linear = shown(image(WindowCenter=2000, WindowWidth=2000))
    sigmoid = shown(image(WindowCenter=2000, WindowWidth=2000, VOILUTFunction="SIGMOID"))
    assert sigmoid[2] == 128 and 0 < sigmoid[0] < sigmoid[1] < 128 < sigmoid[3] < sigmoid[4] < 255
    assert sigmoid != linear


def test_the_voi_lut_sequence_is_applied_and_an_asked_window_overrides_it():
    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 16]
    lut.LUTData = [65535 - v * 16 for v in range(4096)]
    ds = image(VOILUTSequence=Sequence([lut]), WindowCenter=2000, WindowWidth=10)
    assert shown(ds) == [255, 193, 130, 68, 0]
    assert shown(ds, window=(2048.0, 4096.0)) == [0, 62, 125, 187, 255]


def test_without_a_window_the_frame_range_is_used_and_monochrome1_is_inverted():
    assert shown(image()) == [0, 62, 125, 187, 255]
    assert shown(image(PhotometricInterpretation="MONOCHROME1")) == [255, 193, 130, 68, 0]


def test_a_rescale_moves_the_asked_window_into_modality_units():
    ds = image(RescaleSlope=1, RescaleIntercept=-1000)
    assert shown(ds, window=(1000.0, 2000.0)) == [0, 0, 128, 255, 255]


def test_a_thumbnail_fits_its_viewport_keeping_the_aspect():
    ds = image()
    ds.Rows, ds.Columns = 64, 128
    ds.PixelData = np.tile(np.arange(128, dtype="<u2") * 30, 64).tobytes()
    thumb = Image.open(BytesIO(render(ds, 1, "image/jpeg", viewport=(32, 32))))
    assert thumb.size == (32, 16)


def test_the_pages_dicom_json_has_no_patient_name_at_any_depth():
    name = {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}
    document = [{"00100010": name, "00101001": name, "00100020": {"vr": "LO", "Value": ["P1"]},
                 "00081120": {"vr": "SQ", "Value": [{"00100010": name, "00081150": {"vr": "UI", "Value": ["1.2"]}}]},
                 "00080090": {"vr": "PN", "Value": [{"Alphabetic": "Ref^Doc"}]}}]
    assert strip_names(document) == [{"00100020": {"vr": "LO", "Value": ["P1"]},
                                      "00081120": {"vr": "SQ", "Value": [{"00081150": {"vr": "UI", "Value": ["1.2"]}}]},
                                      "00080090": {"vr": "PN", "Value": [{"Alphabetic": "Ref^Doc"}]}}]
