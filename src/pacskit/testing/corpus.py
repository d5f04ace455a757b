"""A reproducible synthetic DICOM corpus: patients × studies × series × instances.

Same arguments, same bytes: UIDs are derived from the seed and the indices, dates from
the seed, nothing from the clock. Patients have names (one with a Latin-1 character) so
that tests can prove pacskit withholds them.

    python -m pacskit.testing.corpus OUT --patients 2 --studies 2 --series 2 --instances 3
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

MODALITIES = {
    "CT": ("1.2.840.10008.5.1.4.1.1.2", "CHEST", "CT THORAX"),
    "MR": ("1.2.840.10008.5.1.4.1.1.4", "HEAD", "MR BRAIN"),
    "US": ("1.2.840.10008.5.1.4.1.1.6.1", "ABDOMEN", "US ABDOMEN"),
    "CR": ("1.2.840.10008.5.1.4.1.1.1", "CHEST", "CR CHEST"),
    "OT": ("1.2.840.10008.5.1.4.1.1.7", "", "SECONDARY CAPTURE"),
}
FAMILY = ["Doe", "Müller", "Smith", "García", "Dupont", "Rossi", "Novak", "Jansen"]
GIVEN = ["John", "Anna", "Maria", "Luc", "Sofia", "Peter", "Eva", "Karl"]
UID_PREFIX = "1.2.826.0.1.3680043.10.1234."


@dataclass(frozen=True)
class CorpusInstance:
    """Where one generated instance sits in the hierarchy, and its file."""

    path: Path
    patient_id: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    modality: str
    study_date: str


def _uid(seed: int, *parts: object) -> str:
    return generate_uid(prefix=UID_PREFIX, entropy_srcs=[str(seed), *map(str, parts)])


def generate_corpus(
    out_dir: Path | str,
    *,
    patients: int = 2,
    studies_per_patient: int = 2,
    series_per_study: int = 2,
    instances_per_series: int = 3,
    rows: int = 64,
    columns: int = 64,
    seed: int = 0,
    modalities: tuple[str, ...] = ("CT", "MR", "US", "CR"),
) -> list[CorpusInstance]:
    """Write the corpus as ``PatientID/StudyUID/SeriesUID/SOPInstanceUID.dcm`` under
    ``out_dir`` and describe every instance written."""
    root = Path(out_dir)
    rng = random.Random(seed)
    pixels = bytes(((i * 7 + seed) % 251) & 0xFF for i in range(rows * columns * 2))
    made: list[CorpusInstance] = []
    for p in range(patients):
        patient = _patient(rng, seed, p)
        for s in range(studies_per_patient):
            study = _study(rng, seed, p, s, patient)
            for r in range(series_per_study):
                modality = modalities[(p + s + r) % len(modalities)]
                series = _series(seed, p, s, r, modality, study)
                for i in range(instances_per_series):
                    ds = _instance(series, seed, (p, s, r, i), rows, columns, pixels, modality)
                    path = root / ds.PatientID / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    dcmwrite(path, ds, enforce_file_format=True)
                    made.append(CorpusInstance(path, ds.PatientID, ds.StudyInstanceUID,
                                               ds.SeriesInstanceUID, ds.SOPInstanceUID,
                                               modality, ds.StudyDate))
    return made


def _patient(rng: random.Random, seed: int, p: int) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = f"{FAMILY[(seed + p) % len(FAMILY)]}^{GIVEN[(seed * 3 + p) % len(GIVEN)]}"
    ds.PatientID = f"PAT{seed:02d}{p:04d}"
    ds.PatientBirthDate = (date(1940, 1, 1) + timedelta(days=rng.randrange(25000))).strftime("%Y%m%d")
    ds.PatientSex = "MF"[p % 2]
    return ds


def _study(rng: random.Random, seed: int, p: int, s: int, patient: Dataset) -> Dataset:
    ds = Dataset()
    ds.update(patient)
    day = date(2019, 1, 1) + timedelta(days=rng.randrange(2000))
    ds.StudyInstanceUID = _uid(seed, "study", p, s)
    ds.StudyDate = day.strftime("%Y%m%d")
    ds.StudyTime = f"{8 + (p + s) % 10:02d}{(s * 7) % 60:02d}00"
    ds.AccessionNumber = f"ACC{seed:02d}{p:04d}{s:02d}"
    ds.StudyID = f"{s + 1}"
    ds.ReferringPhysicianName = f"{FAMILY[(p + s + 3) % len(FAMILY)]}^Doctor"
    ds.InstitutionName = "pacskit synthetic hospital"
    return ds


def _series(seed: int, p: int, s: int, r: int, modality: str, study: Dataset) -> Dataset:
    sop_class, body_part, description = MODALITIES[modality]
    ds = Dataset()
    ds.update(study)
    ds.StudyDescription = description
    ds.SeriesInstanceUID = _uid(seed, "series", p, s, r)
    ds.SeriesNumber = r + 1
    ds.SeriesDescription = f"{description} series {r + 1}"
    ds.Modality = modality
    ds.SeriesDate = study.StudyDate
    ds.SeriesTime = study.StudyTime
    if body_part:
        ds.BodyPartExamined = body_part
    ds.SOPClassUID = sop_class
    return ds


def _instance(series: Dataset, seed: int, index: tuple[int, int, int, int], rows: int,
              columns: int, pixels: bytes, modality: str) -> Dataset:
    ds = Dataset()
    ds.update(series)
    ds.SOPInstanceUID = _uid(seed, "instance", *index)
    ds.InstanceNumber = index[3] + 1
    ds.ContentDate = series.StudyDate
    ds.ContentTime = series.StudyTime
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if modality == "CT":
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.KVP = 120
        ds.SliceThickness = 1.25
        ds.PixelSpacing = [0.7, 0.7]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, -1.25 * index[3]]
    ds.PixelData = pixels
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return ds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--patients", type=int, default=2)
    parser.add_argument("--studies", type=int, default=2, help="studies per patient")
    parser.add_argument("--series", type=int, default=2, help="series per study")
    parser.add_argument("--instances", type=int, default=3, help="instances per series")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--columns", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    made = generate_corpus(args.out_dir, patients=args.patients, studies_per_patient=args.studies,
                           series_per_study=args.series, instances_per_series=args.instances,
                           rows=args.rows, columns=args.columns, seed=args.seed)
    size = sum(m.path.stat().st_size for m in made)
    print(f"wrote {len(made)} instances, {size / 1e6:.1f} MB, under {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
