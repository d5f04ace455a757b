"""`pacskit serve` as the DICOMweb server of hostile clients (issue 18), in a process of its
own: each test sends exactly the hostile input on loopback, checks the bound (time,
descriptors, peak resident memory), then that QIDO-RS and STOW-RS still work."""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

import httpx
from big_index import fill_index
from hostile import image_header
from peak_memory import peak_kib, reset_peak
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from serve_process import ServeProcess
from slow_http import HeaderDrippers

from pacskit import Client, Settings
from pacskit.testing.samples import DATA

CT_SMALL = DATA / "test_files/CT_small.dcm"

HEADER_TIMEOUT = 4.0
DRIPPERS = 300


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def assert_web_serving(server: ServeProcess, instance: Path) -> None:
    """A QIDO-RS search answers, and a STOW-RS of ``instance`` is stored and then found."""
    assert httpx.get(f"{server.web_url}/studies", timeout=10).status_code in (200, 204)
    stored = Client(Settings(ae_title="PACSKIT")).store([instance], server.web_url).raise_for_status()
    assert stored.sent == 1
    found = httpx.get(f"{server.web_url}/instances", timeout=10).json()
    assert any(item["00080018"]["Value"] for item in found)


def test_headers_that_never_end_are_cut_at_the_header_timeout(tmp_path, corpus):
    with ServeProcess(tmp_path / "data", http=True, max_files=256,
                      settings={"WEB__HEADER_TIMEOUT": str(HEADER_TIMEOUT)}) as server:
        idle = descriptors(server.pid)
        with HeaderDrippers(server.http_port, DRIPPERS, interval=2.0) as drippers:
            time.sleep(1.0)
            started = time.monotonic()
            answer = httpx.get(f"{server.web_url}/studies", timeout=3 * HEADER_TIMEOUT)
            assert answer.status_code in (200, 204)
            assert time.monotonic() - started < 3 * HEADER_TIMEOUT
            deadline = time.monotonic() + 6 * HEADER_TIMEOUT
            while drippers.open() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not drippers.open(), f"{len(drippers.open())} of {DRIPPERS} dripping connections still open"
            held = [d.closed_at - d.connected_at for d in drippers.drips
                    if d.connected_at is not None and d.closed_at is not None]
            assert len(held) == DRIPPERS
            assert max(held) < 2 * HEADER_TIMEOUT + 3.0, max(held)
            timed_out = [d for d in drippers.drips if d.received.startswith(b"HTTP/1.1 408 ")]
            assert len(timed_out) == DRIPPERS, [d.received[:40] for d in drippers.drips][:5]
        assert descriptors(server.pid) <= idle + 4
        assert_web_serving(server, corpus[0].path)


SEARCH_LIMIT = 1000
INDEXED = 100_001


def timed_get(url: str, **params: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = httpx.get(url, params=params, timeout=120)
    return answer, time.monotonic() - started


def test_qido_rs_limit_is_capped_and_deep_offsets_are_cheap(tmp_path):
    fill_index(tmp_path / "data", CT_SMALL, INDEXED)
    with ServeProcess(tmp_path / "data", http=True) as server:
        instances = f"{server.web_url}/instances"
        base = reset_peak(server.pid)
        everything, took = timed_get(instances, limit="1000000")
        assert everything.status_code == 200 and len(everything.json()) == SEARCH_LIMIT
        assert "Additional results can be requested" in everything.headers["warning"]
        assert took < 10, took
        assert peak_kib(server.pid) - base < 64 * 1024, f"+{peak_kib(server.pid) - base} KiB"

        beyond, took = timed_get(instances, offset="1000000")
        assert beyond.status_code == 200 and beyond.json() == [] and took < 2, took
        last, took = timed_get(instances, offset=str(INDEXED - 10))
        assert len(last.json()) == 10 and "warning" not in last.headers and took < 2, took
        assert last.json()[-1]["00080018"]["Value"] == [f"2.25.{INDEXED - 1}"]
        under_cap, _ = timed_get(instances, limit="5", offset="7")
        assert [i["00080018"]["Value"][0] for i in under_cap.json()] == [f"2.25.{n}" for n in range(7, 12)]
        assert "warning" not in under_cap.headers

        sop_class = everything.json()[0]["00080016"]["Value"][0]
        pages, times = [], []
        for page in range(3):
            answer, took = timed_get(instances, SOPClassUID=sop_class, offset=str(page * SEARCH_LIMIT))
            pages += [i["00080018"]["Value"][0] for i in answer.json()]
            times.append(took)
        assert len(pages) == len(set(pages)) == 3 * SEARCH_LIMIT
        assert pages[SEARCH_LIMIT:SEARCH_LIMIT + 2] == [f"2.25.{SEARCH_LIMIT}", f"2.25.{SEARCH_LIMIT + 1}"]
        assert max(times[1:]) < 3 * times[0] + 1, times
        cold, cold_took = timed_get(instances, SOPClassUID=sop_class, offset="20000", limit="10")
        warm, warm_took = timed_get(instances, SOPClassUID=sop_class, offset="20010", limit="10")
        assert [i["00080018"]["Value"][0] for i in cold.json() + warm.json()] == [
            f"2.25.{n}" for n in range(20000, 20020)]
        assert warm_took < cold_took / 5, (cold_took, warm_took)
        assert_web_serving(server, CT_SMALL)


RLE_LOSSLESS = "1.2.840.10008.1.2.5"
BOMB_SIDE = 6144


def rle_bomb(path: Path) -> Path:
    """A 1.1 MB RLE Lossless instance declaring a 6144 x 6144 16-bit image of zeros: two
    RLE segments (PS3.5 G.3) of runs of 128 zero bytes."""
    segment = b"\x81\x00" * (BOMB_SIDE * BOMB_SIDE // 128)
    header = struct.pack("<16I", 2, 64, 64 + len(segment), *([0] * 13))
    ds = image_header(Rows=BOMB_SIDE, Columns=BOMB_SIDE, BitsAllocated=16, BitsStored=16, HighBit=15,
                      PixelRepresentation=0, SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2")
    ds.PixelData = encapsulate([header + segment + segment])
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = RLE_LOSSLESS
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_decompression_bomb_is_refused_by_rendered_thumbnail_frames_and_transcoding_before_decoding(tmp_path):
    bomb = rle_bomb(tmp_path / "bomb.dcm")
    assert 1_000_000 < bomb.stat().st_size < 1_300_000
    harmless = DATA / "test_files/MR_small_RLE.dcm"
    with ServeProcess(tmp_path / "data", http=True) as server:
        stored = Client(Settings(ae_title="PACSKIT")).store([bomb, harmless], server.web_url).raise_for_status()
        assert stored.sent == 2
        ds = dcmread(bomb, stop_before_pixels=True)
        instance = (f"{server.web_url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                    f"/instances/{ds.SOPInstanceUID}")
        base = reset_peak(server.pid)
        explicit = "transfer-syntax=1.2.840.10008.1.2.1"
        for url, accept in ((f"{instance}/rendered", "image/png"), (f"{instance}/frames/1/rendered", "image/jpeg"),
                            (f"{instance}/thumbnail", "image/jpeg"),
                            (f"{instance}/frames/1", f"multipart/related; type=\"application/octet-stream\"; {explicit}"),
                            (instance, f"multipart/related; type=\"application/dicom\"; {explicit}"),
                            (instance, f"application/dicom; {explicit}")):
            started = time.monotonic()
            answer = httpx.get(url, headers={"Accept": accept}, timeout=60)
            assert answer.status_code == 413, (url, answer.status_code, answer.text[:200])
            assert "pixel budget" in answer.text and time.monotonic() - started < 2
        wado_uri = httpx.get(server.web_url.removesuffix("/dicom-web") + "/wado", timeout=60, params={
            "requestType": "WADO", "studyUID": ds.StudyInstanceUID, "seriesUID": ds.SeriesInstanceUID,
            "objectUID": ds.SOPInstanceUID, "contentType": "image/jpeg"})
        assert wado_uri.status_code == 413, wado_uri.text[:200]
        transcoded = httpx.get(server.web_url.removesuffix("/dicom-web") + "/wado", timeout=60, params={
            "requestType": "WADO", "studyUID": ds.StudyInstanceUID, "seriesUID": ds.SeriesInstanceUID,
            "objectUID": ds.SOPInstanceUID, "contentType": "application/dicom",
            "transferSyntax": "1.2.840.10008.1.2.1"})
        assert transcoded.status_code == 413, transcoded.text[:200]
        assert peak_kib(server.pid) - base < 16 * 1024, f"+{peak_kib(server.pid) - base} KiB"
        small = dcmread(harmless, stop_before_pixels=True)
        rendered = httpx.get(f"{server.web_url}/studies/{small.StudyInstanceUID}/series/{small.SeriesInstanceUID}"
                             f"/instances/{small.SOPInstanceUID}/rendered", headers={"Accept": "image/png"})
        assert rendered.status_code == 200 and rendered.content.startswith(b"\x89PNG")
        assert_web_serving(server, CT_SMALL)


BODY_TIMEOUT = 2.0


def stow_request(port: int, body: bytes, boundary: str) -> bytes:
    return (f"POST /dicom-web/studies HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f'Content-Type: multipart/related; type="application/dicom"; boundary={boundary}\r\n'
            f"Content-Length: {len(body)}\r\n\r\n").encode()


def drip(sock: socket.socket, data: bytes, piece: int, interval: float, deadline: float) -> bytes:
    """Send ``data`` ``piece`` bytes every ``interval`` seconds until it is sent or the
    server closes; what the server answered."""
    sock.settimeout(interval)
    received = b""
    for start in range(0, len(data), piece):
        try:
            sock.sendall(data[start:start + piece])
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if not chunk:
            break
        received += chunk
        if time.monotonic() > deadline:
            break
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received


def test_a_body_dripped_below_the_minimum_rate_is_cut_and_a_slow_steady_one_is_not(tmp_path):
    boundary = "pacskit-drip"
    instance = CT_SMALL.read_bytes()
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + instance
            + f"\r\n--{boundary}--\r\n".encode())
    with ServeProcess(tmp_path / "data", http=True, settings={"WEB__BODY_TIMEOUT": str(BODY_TIMEOUT)}) as server:
        with socket.create_connection(("127.0.0.1", server.http_port)) as sock:
            sock.sendall(stow_request(server.http_port, body, boundary))
            started = time.monotonic()
            answer = drip(sock, body, 1, 0.5, started + 10 * BODY_TIMEOUT)
            held = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), (answer[:80], held, server.log_path.read_text()[-1500:])
        assert BODY_TIMEOUT - 0.5 < held < BODY_TIMEOUT + 2.5, held
        # The application learns of the disconnect as the client reads its 408: its spool
        # goes within moments, not before the answer.
        deadline = time.monotonic() + 10
        while server.temporary_files() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.temporary_files() == []
        # 4 KiB every 0.4 s (10 KB/s, above the 500 B/s minimum) lasts past the grace.
        with socket.create_connection(("127.0.0.1", server.http_port)) as sock:
            sock.sendall(stow_request(server.http_port, body, boundary))
            started = time.monotonic()
            answer = drip(sock, body, 4096, 0.4, started + 30)
            took = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert took > 2 * BODY_TIMEOUT, took
        assert_web_serving(server, CT_SMALL)
