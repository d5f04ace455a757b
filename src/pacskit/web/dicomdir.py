"""The DICOMDIR of a downloaded ZIP (PS3.10 8, PS3.3 Annex F): directory records made by
pydicom's :class:`~pydicom.fileset.FileSet` from each instance's header, its File IDs
(``PT000000/ST000000/SE000000/IM000000``, pydicom's naming) given as the instances are
added, so that each file can be sent under its File ID before the DICOMDIR itself, which
goes last. An instance of a series already recorded is hung under that series' record
directly, not looked up level by level, which would cost as many comparisons as there
are records under each level.

``FileSet.add`` would save a copy of every instance to a staging folder, and
``FileSet.write`` copy them all again into the File-set's folder; neither fits a ZIP
that is streamed. So the records are built and encoded with the FileSet's own record
and encoding methods (``_recordify``, ``_write_dicomdir``), which pydicom keeps private:
pinned to pydicom 3.0 by the tests that read the DICOMDIR back.

No Patient's Name is written: the PATIENT records carry Patient ID and an empty
Patient's Name (Type 2), whatever the instances hold.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from pydicom import dcmread
from pydicom.filebase import DicomFileLike
from pydicom.fileset import FileInstance, FileSet, RecordNode

NAME = "DICOMDIR"


class DicomDir:
    """The records of the instances added so far; :meth:`encoded` is the DICOMDIR."""

    def __init__(self) -> None:
        self._set = FileSet()
        self._series: dict[tuple[str, ...], RecordNode] = {}
        self.count = 0

    def add(self, path: Path) -> str | None:
        """Record the instance at ``path``; its File ID (``/``-separated), or None when
        pydicom's record creators cannot record it (a Type 1 attribute of a record,
        such as Patient ID or Instance Number, is missing or empty)."""
        header = dcmread(path, stop_before_pixels=True)
        if "PatientName" in header:
            header.PatientName = ""
        for sequence in ("OtherPatientNames", "PatientBirthName", "PatientMotherBirthName"):
            if sequence in header:
                del header[sequence]
        try:
            records = list(self._set._recordify(header))
        except (ValueError, AttributeError, KeyError, TypeError):
            return None
        series = tuple(str(r.get(k, "")) for r, k in zip(records, ("PatientID", "StudyInstanceUID",
                                                                    "SeriesInstanceUID"), strict=False))
        known = self._series.get(series) if len(records) == 4 else None
        node = RecordNode(records[-1])
        instance = FileInstance(node)
        node.instance = instance
        if known is not None:
            node.parent = known
        else:
            chain = [RecordNode(record) for record in records[:-1]]
            for parent, child in zip(chain, [*chain[1:], node], strict=True):
                child.parent = parent
            self._set._tree.add(node)
            if len(records) == 4:
                self._series[series] = node.parent
        file_id = instance.FileID.split(os.sep)
        node._record.ReferencedFileID = file_id
        self.count += 1
        return "/".join(file_id)

    def encoded(self) -> bytes:
        """The DICOMDIR file (Explicit VR Little Endian)."""
        buffer = io.BytesIO()
        self._set._write_dicomdir(DicomFileLike(buffer), copy_safe=True)
        return buffer.getvalue()

    def close(self) -> None:
        """Remove the empty staging folder every FileSet makes (nothing is staged in it)."""
        with contextlib.suppress(OSError, KeyError, AttributeError):
            self._set._stage["t"].cleanup()
