"""A synthetic CT series that looks like one: an axial body section (soft tissue, two
lungs, a spine that moves from slice to slice) in Hounsfield units, 16-bit signed with a
rescale (PS3.3 C.8.2.1), a soft-tissue window. For the web page's tests and benchmark,
where images must differ from slice to slice and respond to a window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PATIENT_NAME = "Phantom^Patricia"
PREFIX = "1.2.826.0.1.3680043.10.1234.9."


def write_ct_series(out_dir: Path, *, slices: int = 6, size: int = 512, seed: int = 0,
                    patient_id: str = "PHANTOM1") -> list[Path]:
    """Write ``slices`` CT slices of ``size`` × ``size`` under ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)

    def uid(*parts: object) -> str:
        return generate_uid(prefix=PREFIX, entropy_srcs=[str(seed), *map(str, parts)])

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    paths = []
    for n in range(slices):
        hu = np.full((size, size), -1000.0, dtype=np.float32)
        body = ((x - 0.5) / 0.42) ** 2 + ((y - 0.52) / 0.33) ** 2 < 1
        hu[body] = 40
        for cx in (0.33, 0.67):
            hu[((x - cx) / 0.13) ** 2 + ((y - 0.48) / (0.18 - 0.01 * n)) ** 2 < 1] = -820
        spine = (x - 0.5) ** 2 + (y - 0.74 + 0.004 * n) ** 2 < (0.045 + 0.003 * n) ** 2
        hu[spine] = 700
        hu[(np.abs(x - 0.5) < 0.01 + 0.002 * n) & (np.abs(y - 0.35) < 0.05)] = 250
        hu += (np.sin(x * 90 + n) * np.cos(y * 70) * 12).astype(np.float32) * body
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = PATIENT_NAME, patient_id, "F", "19700101"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("study"), uid("series")
        ds.SOPInstanceUID, ds.SOPClassUID = uid("instance", n), CT_IMAGE_STORAGE
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20250314"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
        ds.AccessionNumber, ds.StudyID, ds.Modality = f"PH{seed:04d}", "1", "CT"
        ds.StudyDescription, ds.SeriesDescription = "PHANTOM THORAX", "Axial 5 mm"
        ds.SeriesNumber, ds.InstanceNumber = 1, n + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 5
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, -5.0 * n], [1, 0, 0, 0, 1, 0]
        ds.PixelData = (hu + 1024).astype("<i2").tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID, ds.file_meta.ImplementationClassUID = ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID
        path = out_dir / f"{ds.SOPInstanceUID}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths
