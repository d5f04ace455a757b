"""A study downloaded as a ZIP (docs/web-actions.md) within bounds: `pacskit serve` (a
process of its own) streams a 96 MiB study with its DICOMDIR in bounded memory, and a
ZIP larger than the free space of the archive's disk is sent whole, nothing of it
spooled there."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from peak_memory import peak_kib, reset_peak
from pydicom import dcmread
from pydicom.uid import generate_uid
from serve_process import ServeProcess

from pacskit.archive import Archive
from pacskit.archive.maintenance import import_files
from pacskit.settings import ArchiveSettings, Settings, WebSettings
from pacskit.testing.peers import free_port
from pacskit.testing.samples import DATA

CT_SMALL = DATA / "test_files/CT_small.dcm"
MIB = 1 << 20


def big_instances(folder: Path, count: int, pixel_mib: int) -> list[Path]:
    """``count`` instances of one study and series, CT_small with ``pixel_mib`` MiB of
    16-bit pixel data each (1024 columns), written as they go."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    block = bytes(range(256)) * (MIB // 256)
    paths = []
    for number in range(1, count + 1):
        ds = dcmread(CT_SMALL)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study, series, number
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.Rows, ds.Columns = pixel_mib * 512, 1024
        del ds.PixelData
        path = folder / f"{number}.dcm"
        ds.save_as(path, enforce_file_format=True)
        with path.open("ab") as out:
            out.write(b"\xe0\x7f\x10\x00OW\0\0" + (pixel_mib * MIB).to_bytes(4, "little"))
            for _ in range(pixel_mib):
                out.write(block)
        paths.append(path)
    return paths


def archive_settings(data_dir: Path) -> Settings:
    return Settings(ae_title="ARCHIVE", port=free_port(), bind_address="127.0.0.1",
                    archive=ArchiveSettings(data_dir=data_dir, fsync=False), web=WebSettings(port=free_port()))


def imported(data_dir: Path, paths: list[Path]) -> dict[str, str]:
    """Import ``paths`` into the archive at ``data_dir``; SOP Instance UID → SHA-256 of
    its stored file."""
    with Archive(archive_settings(data_dir)) as archive:
        assert not import_files(archive.ingest, paths).failed
        return {uid: _sha256(archive.ingest.files / path) for uid, path in archive.index.all_paths()}


def download(url: str, target: Path, **params: str) -> int:
    with httpx.stream("GET", url, params={"accept": "application/zip", **params}, timeout=300) as answer:
        assert answer.status_code == 200, answer.read()
        with target.open("wb") as out:
            for chunk in answer.iter_bytes():
                out.write(chunk)
    return target.stat().st_size


def members(zip_path: Path) -> dict[str, str]:
    """SOP Instance UID → SHA-256 of each DICOM member (not the DICOMDIR)."""
    found = {}
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            if name == "DICOMDIR":
                continue
            with archive.open(name) as member:
                uid = str(dcmread(member, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
            with archive.open(name) as member:
                found[uid] = _sha256_stream(member)
    return found


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return _sha256_stream(fh)


def _sha256_stream(fh) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(MIB):
        digest.update(chunk)
    return digest.hexdigest()


def test_a_96_mib_study_with_its_dicomdir_is_streamed_in_bounded_memory(tmp_path):
    stored = imported(tmp_path / "data", big_instances(tmp_path / "source", 3, 32))
    study = str(dcmread(tmp_path / "source" / "1.dcm", stop_before_pixels=True).StudyInstanceUID)
    with ServeProcess(tmp_path / "data", http=True) as server:
        base = reset_peak(server.pid)
        size = download(f"{server.web_url}/studies/{study}", tmp_path / "study.zip", dicomdir="true")
        grown = peak_kib(server.pid) - base
    assert size > 96 * MIB
    assert members(tmp_path / "study.zip") == stored
    # Measured +7.5 MiB for a 192 MiB study: the 1 MiB chunks in flight, the DICOMDIR's records.
    assert grown < 24 * 1024, f"serve's peak memory grew by {grown >> 10} MiB for a 96 MiB ZIP"


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 24 MiB file system of its own (tmpfs; pacskit's tests run as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_zip_larger_than_the_free_disk_is_sent_whole_with_nothing_spooled(tmp_path, small_disk):
    stored = imported(small_disk / "data", big_instances(tmp_path / "source", 3, 5))
    study = str(dcmread(tmp_path / "source" / "1.dcm", stop_before_pixels=True).StudyInstanceUID)
    with Archive(archive_settings(small_disk / "data")) as archive:
        archive.start()
        free_before = _free(small_disk)
        size = download(f"http://127.0.0.1:{archive.settings.web.port}/dicom-web/studies/{study}",
                        tmp_path / "study.zip")
        free_after = _free(small_disk)
        assert list(archive.ingest.scratch.iterdir()) == []
    assert size > free_before
    assert free_after >= free_before - 256 * 1024
    assert members(tmp_path / "study.zip") == stored


def _free(mount: Path) -> int:
    stat = os.statvfs(mount)
    return stat.f_bavail * stat.f_frsize


def test_a_study_deleted_while_its_zip_is_sent_ends_the_download_broken(tmp_path):
    imported(tmp_path / "data", big_instances(tmp_path / "source", 3, 5))
    study = str(dcmread(tmp_path / "source" / "1.dcm", stop_before_pixels=True).StudyInstanceUID)
    settings = archive_settings(tmp_path / "data")
    settings.web.anonymous_actions = ["delete"]
    with Archive(settings) as archive:
        archive.start()
        base = f"http://127.0.0.1:{archive.settings.web.port}"
        received = bytearray()
        with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
                "GET", f"{base}/dicom-web/studies/{study}", params={"accept": "application/zip"},
                timeout=30) as answer:
            for chunk in answer.iter_bytes():
                if not received:
                    deleted = httpx.delete(f"{base}/api/studies/{study}", headers={"X-Pacskit-Action": "1"},
                                           timeout=30)
                    assert deleted.status_code == 200, deleted.text
                received += chunk
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(bytes(received)))
