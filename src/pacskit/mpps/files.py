"""The instances a step produced, read from DICOM files for its Performed Series
Sequence (only the few attributes it lists; no pixel data is read)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from pacskit.errors import InputError
from pacskit.mpps.build import InstanceRef
from pacskit.scan import iter_paths

_TAGS = ["SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "SeriesDescription", "ProtocolName",
         "StudyInstanceUID", "SpecificCharacterSet"]


def instances_in_files(paths: Iterable[Path | str]) -> list[InstanceRef]:
    """One :class:`InstanceRef` per DICOM file under ``paths`` (folders recursively).

    Raises:
        InputError: a path does not exist, a file is not DICOM or lacks its UIDs, or
            there is no file at all.
    """
    found = []
    for path in iter_paths(paths):
        try:
            dataset = dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
        except (InvalidDicomError, OSError, ValueError) as exc:
            raise InputError(f"{path}: not a DICOM file ({exc})") from None
        uids = [str(dataset.get(k, "")).strip() for k in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID")]
        if not all(uids):
            raise InputError(f"{path}: lacks its SOP Class, SOP Instance or Series Instance UID")
        sop_class_uid, sop_instance_uid, series_uid = uids
        found.append(InstanceRef(sop_class_uid, sop_instance_uid, series_uid, series_description=str(dataset.get("SeriesDescription", "") or ""),
                                 protocol_name=str(dataset.get("ProtocolName", "") or ""),
                                 study_uid=str(dataset.get("StudyInstanceUID", "") or "")))
    if not found:
        raise InputError("no DICOM file in the paths given")
    return found
