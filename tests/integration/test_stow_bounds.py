"""STOW-RS to `pacskit serve` (a process of its own) within bounds (issue 18): a large
instance is stored byte for byte without ever being whole in the server's memory, and a
body the archive's disk cannot hold is answered 507 with nothing left behind."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from peak_memory import peak_kib, reset_peak
from pydicom import dcmread
from serve_process import ServeProcess

from pacskit.encoded import parse_file_meta
from pacskit.testing.samples import DATA

CT_SMALL = DATA / "test_files/CT_small.dcm"
BOUNDARY = "pacskit-stow-bounds"
LARGE_PIXELS = 256 << 20
CHUNK = 1 << 20


def large_instance(path: Path) -> Path:
    """CT_small with 256 MiB of pixel data (8192 × 16384, 16 bits), written as it goes."""
    ds = dcmread(CT_SMALL)
    ds.Rows, ds.Columns = 8192, 16384
    del ds.PixelData
    ds.save_as(path, enforce_file_format=True)
    with path.open("ab") as out:
        out.write(b"\xe0\x7f\x10\x00OW\0\0" + LARGE_PIXELS.to_bytes(4, "little"))
        block = bytes(range(256)) * (CHUNK // 256)
        for _ in range(LARGE_PIXELS // CHUNK):
            out.write(block)
    return path


def multipart_from(path: Path) -> Iterator[bytes]:
    yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def stow(server: ServeProcess, body: Iterator[bytes] | bytes) -> httpx.Response:
    return httpx.post(f"{server.web_url}/studies", content=body, timeout=300,
                      headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'})


def dataset_digest(path: Path) -> str:
    data = path.read_bytes()
    offset = parse_file_meta(data)[1]
    assert offset is not None
    return hashlib.sha256(data[offset:]).hexdigest()


def test_a_256_mib_instance_is_stored_byte_for_byte_in_bounded_memory(tmp_path):
    source = large_instance(tmp_path / "large.dcm")
    with ServeProcess(tmp_path / "data", http=True, settings={"WEB__MAX_BODY": str(1 << 30)}) as server:
        base = reset_peak(server.pid)
        answer = stow(server, multipart_from(source))
        grown = peak_kib(server.pid) - base
        assert answer.status_code == 200, answer.text
        [stored] = [p for p in (tmp_path / "data" / "files").rglob("*") if p.is_file()]
        assert server.temporary_files() == []
    assert dataset_digest(stored) == dataset_digest(source)
    assert grown < 32 * 1024, f"serve's peak memory grew by {grown >> 10} MiB for a 256 MiB instance"


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


def test_a_body_the_disk_cannot_hold_is_507_and_the_archive_goes_on(tmp_path, small_disk):
    with ServeProcess(small_disk / "data", http=True) as server:
        answer = stow(server, multipart_from(large_instance(tmp_path / "large.dcm")))
        assert answer.status_code == 507, answer.text
        assert "disk is full" in answer.text
        assert server.temporary_files() == []
        small = b"".join(multipart_from(CT_SMALL))
        assert stow(server, small).status_code == 200
        assert httpx.get(f"{server.web_url}/instances", timeout=10).json()[0]["00080018"]["Value"]
