"""Writing instances into a folder: atomically, under a layout, with patient names withheld.

Every write goes to a temporary file beside its target and is renamed into place, so a
crash, a full disk or an aborted transfer leaves either the whole file or nothing.
"""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import dcmwrite

from pacskit.errors import DiskFull, OutputError
from pacskit.layout import Layout
from pacskit.privacy import DEFAULT_PRIVACY, PrivacyPolicy, contains_names


@dataclass(frozen=True)
class WrittenInstance:
    """What a write did.

    Attributes:
        path: where the instance is (or already was).
        sop_instance_uid: the instance written.
        skipped: ``True`` when the file was already there and ``overwrite`` was off.
        size: bytes written (0 when skipped).
    """

    path: Path
    sop_instance_uid: str
    skipped: bool
    size: int


class FolderSink:
    """A folder that instances are written into.

    Args:
        root: the output folder (created if missing).
        layout: where under ``root`` each instance goes.
        overwrite: replace files that exist; by default they are kept and skipped.
        privacy: the patient-name policy applied to every written instance.
        fsync: flush each file to disk before renaming it into place.
    """

    def __init__(
        self,
        root: Path | str,
        layout: Layout | None = None,
        *,
        overwrite: bool = False,
        privacy: PrivacyPolicy = DEFAULT_PRIVACY,
        fsync: bool = False,
    ) -> None:
        self.root = Path(root)
        self.layout = layout or Layout()
        self.overwrite = overwrite
        self.privacy = privacy
        self.fsync = fsync

    def prepare(self) -> None:
        """Create the folder and prove it is writable.

        Raises:
            OutputError: it cannot be created or written.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".pacskit-probe-"):
                pass
        except OSError as exc:
            raise OutputError(f"cannot write to {self.root}: {exc.strerror or exc}") from None

    def path_for(self, values: Dataset | dict[str, object]) -> Path:
        """Where an instance with these attributes goes."""
        return self.layout.path_in(self.root, values)

    def write_encoded(self, data: bytes) -> WrittenInstance:
        """Write a DICOM Part 10 byte string (preamble, file meta, dataset) as received.

        The bytes are written unchanged unless the privacy policy must blank a name, in
        which case the dataset is re-encoded in its own transfer syntax (pixel data is
        never decoded).

        Raises:
            OutputError: not DICOM, or the file cannot be written.
            DiskFull: no space left.
        """
        try:
            dataset = dcmread(BytesIO(data))
        except (InvalidDicomError, EOFError, ValueError, KeyError) as exc:
            raise OutputError(f"received data is not a valid DICOM file: {exc}") from None
        if self.privacy.withholds_names and contains_names(dataset):
            return self.write_dataset(dataset)
        return self._write(self.path_for(dataset), str(dataset.SOPInstanceUID), data)

    def write_dataset(self, dataset: Dataset) -> WrittenInstance:
        """Encode and write a dataset that has file meta information.

        Raises:
            OutputError, DiskFull: as :meth:`write_encoded`.
        """
        if self.privacy.withholds_names:
            self.privacy.blank_instance(dataset)
        target = self.path_for(dataset)
        if target.exists() and not self.overwrite:
            return WrittenInstance(target, str(dataset.SOPInstanceUID), True, 0)
        buffer = BytesIO()
        dcmwrite(buffer, dataset, enforce_file_format=True)
        return self._write(target, str(dataset.SOPInstanceUID), buffer.getvalue())

    def _write(self, target: Path, uid: str, data: bytes) -> WrittenInstance:
        if target.exists() and not self.overwrite:
            return WrittenInstance(target, uid, True, 0)
        tmp: str | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".pacskit-", suffix=".part")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
            tmp = None
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DiskFull(f"disk full while writing {target}") from None
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        return WrittenInstance(target, uid, False, len(data))
