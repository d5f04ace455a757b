"""The conversion child (:mod:`pacskit.conversion`): its frames, its answers byte for byte
equal to the in-process conversion on pydicom's compressed files, a file it cannot decode,
a child killed mid-conversion or late, conversions far larger than a frame, frames over
the limit, and no temporary file left after any of them. Every child here is the real
``python -m pacskit.conversion``."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time
from io import BytesIO
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pacskit import conversion
from pacskit.conversion import (
    READY,
    ChildConverter,
    ConversionError,
    ConversionTimeout,
    FrameTooLarge,
    check_answer,
    child_command,
    decode_request,
    encode_answer,
    encode_request,
    read_frame,
    write_frame,
)

COMPRESSED = [
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline
    "JPGExtended.dcm",  # JPEG extended, 12-bit
    "SC_rgb_jpeg_gdcm.dcm",
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "JPEGLSNearLossless_16.dcm",  # JPEG-LS near-lossless
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "JPEG2000.dcm",  # JPEG 2000
    "MR_small_RLE.dcm",  # RLE
    "SC_rgb_rle_16bit_2frame.dcm",
    "image_dfl.dcm",  # deflated explicit VR little endian
]
UNDECODABLE = "JPEG-lossy.dcm"  # 12-bit JPEG extended that neither pylibjpeg nor Pillow decodes


def sample(name: str) -> Path:
    return Path(get_testdata_file(name))


def test_frames_round_trip_one_after_another():
    stream = BytesIO()
    for payload in (b"", b"x", bytes(range(256)) * 100):
        write_frame(stream, payload)
    stream.seek(0)
    assert [read_frame(stream), read_frame(stream), read_frame(stream)] == [b"", b"x", bytes(range(256)) * 100]
    assert read_frame(stream) is None


def test_a_frame_cut_short_is_an_error():
    stream = BytesIO()
    write_frame(stream, b"0123456789")
    for cut in (2, 9):
        with pytest.raises(EOFError):
            read_frame(BytesIO(stream.getvalue()[:cut]))


def test_a_frame_over_the_limit_is_refused_before_its_bytes():
    header_only = BytesIO(struct.pack(">I", 1 << 31))
    with pytest.raises(FrameTooLarge, match="over the limit"):
        read_frame(header_only)
    assert header_only.tell() == 4
    with pytest.raises(FrameTooLarge):
        read_frame(BytesIO(struct.pack(">I", 11) + bytes(11)), limit=10)
    written = BytesIO()
    with pytest.raises(FrameTooLarge):
        write_frame(written, bytes(11), limit=10)
    assert written.getvalue() == b""


def test_requests_and_answers_round_trip():
    path, output = Path("/tmp/some dir/é.dcm"), Path("/tmp/out")
    assert decode_request(encode_request(ImplicitVRLittleEndian, path, output)) == (ImplicitVRLittleEndian, path,
                                                                                    output)
    check_answer(encode_answer(True))
    with pytest.raises(ConversionError, match="^cannot$"):
        check_answer(encode_answer(False, b"cannot"))
    with pytest.raises(ConversionError, match="malformed"):
        check_answer(b"?")
    for malformed in (b"X", b"1.2\0/a", b"1.2\0\0/b", b"1.2\0/a\0/b\0/c"):
        with pytest.raises(ValueError):
            decode_request(malformed)
    with pytest.raises(ValueError):
        encode_request("", path, output)
    with pytest.raises(ValueError):
        encode_request(ImplicitVRLittleEndian, Path("/a\0b"), output)


def leftovers(converter: ChildConverter) -> list[Path]:
    """The files in the converter's private temporary folder."""
    return sorted(converter.folder.iterdir()) if converter.folder is not None else []


@pytest.fixture(scope="module")
def child():
    with ChildConverter() as converter:
        yield converter


@pytest.mark.parametrize("name", COMPRESSED)
@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_the_child_converts_byte_for_byte_as_this_process(child, name, syntax):
    path = sample(name)
    expected = conversion.convert(path, syntax)
    assert child.convert(path, syntax) == expected
    assert child.convert(path.read_bytes(), syntax) == expected
    assert child.started == 1
    assert leftovers(child) == []


def test_a_file_the_child_cannot_decode_has_pydicoms_reason(child):
    path = sample(UNDECODABLE)
    with pytest.raises(Exception) as here:
        conversion.convert(path, ImplicitVRLittleEndian)
    with pytest.raises(ConversionError) as there:
        child.convert(path, ImplicitVRLittleEndian)
    assert str(there.value) == conversion.reason(here.value)
    assert "Unable to decode" in str(there.value)
    pid = child.pid
    assert child.convert(sample("MR_small_RLE.dcm"), ImplicitVRLittleEndian)
    assert child.pid == pid


def test_a_missing_file_and_a_non_dicom_one_have_their_reason(child, tmp_path):
    with pytest.raises(ConversionError, match="No such file"):
        child.convert(tmp_path / "gone.dcm", ImplicitVRLittleEndian)
    with pytest.raises(ConversionError):
        child.convert(b"not DICOM at all", ImplicitVRLittleEndian)
    assert leftovers(child) == []


def test_a_child_killed_mid_conversion_fails_that_file_and_the_next_starts_another(tmp_path):
    """The file to convert is a FIFO: the child blocks reading it, and is killed once it
    has opened it (the writer's open returns only then)."""
    fifo = tmp_path / "fifo.dcm"
    os.mkfifo(fifo)
    with ChildConverter() as converter:
        assert converter.convert(sample("MR_small_RLE.dcm"), ImplicitVRLittleEndian)
        first = converter.pid
        assert first is not None

        def kill_once_opened() -> None:
            with open(fifo, "wb"):
                os.kill(first, signal.SIGKILL)

        killer = threading.Thread(target=kill_once_opened, daemon=True)
        killer.start()
        try:
            with pytest.raises(ConversionError, match=r"ended while converting it \(killed by signal 9\)"):
                converter.convert(fifo, ImplicitVRLittleEndian)
        finally:
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # frees the writer if the child never opened it
            killer.join(10)
        assert converter.pid is None
        assert leftovers(converter) == []
        path = sample("JPEG2000.dcm")
        assert converter.convert(path, ImplicitVRLittleEndian) == conversion.convert(path, ImplicitVRLittleEndian)
        assert converter.started == 2 and converter.pid != first


def test_a_conversion_over_the_timeout_kills_the_child_and_the_next_starts_another(tmp_path):
    """The file to convert is a FIFO no one ever writes: the child blocks opening it, for
    good. The timeout counts from the child's readiness, so the first child's start
    does not eat into it."""
    fifo = tmp_path / "fifo.dcm"
    os.mkfifo(fifo)
    with ChildConverter(timeout=1.5) as converter:
        began = time.monotonic()
        with pytest.raises(ConversionTimeout, match=r"^the conversion took longer than 1.5 s and was stopped$"):
            converter.convert(fifo, ImplicitVRLittleEndian)
        assert time.monotonic() - began >= 1.5
        assert converter.pid is None
        assert leftovers(converter) == []
        path = sample("JPEG2000.dcm")
        assert converter.convert(path, ImplicitVRLittleEndian) == conversion.convert(path, ImplicitVRLittleEndian)
        with pytest.raises(ConversionTimeout, match="longer than 0.5 s"):
            converter.convert(fifo, ImplicitVRLittleEndian, timeout=0.5)
        assert converter.started == 2


def test_a_child_that_exits_says_what_it_wrote_last(tmp_path):
    script = "import sys; sys.stdin.buffer.read(4); print('out of luck', file=sys.stderr); sys.exit(3)"
    with (ChildConverter(command=[sys.executable, "-c", script]) as converter,
          pytest.raises(ConversionError, match=r"\(exit status 3\): out of luck$")):
        converter.convert(b"DICM", ImplicitVRLittleEndian)


def test_a_child_that_cannot_start_fails_the_conversion_and_warming_does_not(tmp_path):
    missing = str(tmp_path / "no-such-python")
    with conversion.in_child(ChildConverter(command=[missing])) as converter:
        conversion.warm()
        with pytest.raises(ConversionError, match="the conversion process could not start .*no-such-python"):
            converter.convert(b"DICM", ImplicitVRLittleEndian)


def test_a_request_over_the_limit_is_refused_without_a_child(tmp_path):
    deep = tmp_path / ("d" * 200) / "file.dcm"
    with ChildConverter(max_frame=100) as converter:
        with pytest.raises(FrameTooLarge, match="request is over the limit of 100 bytes"):
            converter.convert(deep, ImplicitVRLittleEndian)
        assert converter.started == 0
        assert leftovers(converter) == []


def test_a_conversion_far_larger_than_a_frame_goes_through_a_file():
    """Only paths and reasons cross the pipes: with frames of 1 KiB, a file of 7 KiB
    (526,970 bytes decompressed) converts, from its path and from its bytes held."""
    path = sample("JPEG2000.dcm")
    expected = conversion.convert(path, ImplicitVRLittleEndian)
    assert len(expected) > 500 * 1024
    with ChildConverter(max_frame=1024) as converter:
        with converter.open(path, ImplicitVRLittleEndian) as converted:
            assert leftovers(converter) == []  # open, already without a name
            assert converted.read() == expected
        assert converter.convert(path.read_bytes(), ImplicitVRLittleEndian) == expected
        folder = converter.folder
        assert folder is not None and leftovers(converter) == [] and converter.started == 1
    assert not folder.exists()


def test_the_child_exits_when_its_input_closes():
    child = subprocess.run(child_command(), input=b"", capture_output=True, timeout=60)
    assert (child.returncode, child.stdout) == (0, struct.pack(">I", 1) + READY)


def test_the_child_answers_a_frame_over_its_limit_and_exits():
    child = subprocess.run(child_command(100), input=struct.pack(">I", 101) + bytes(101), capture_output=True,
                           timeout=60)
    assert child.returncode == 2
    answers = BytesIO(child.stdout)
    assert read_frame(answers) == READY
    answer = read_frame(answers)
    assert answer is not None and answer.startswith(b"E") and b"over the limit of 100" in answer


def test_closing_stops_the_child_and_it_can_start_again():
    converter = ChildConverter()
    assert converter.convert(sample("MR_small_RLE.dcm"), ImplicitVRLittleEndian)
    pid = converter.pid
    assert pid is not None
    converter.close()
    assert converter.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert converter.convert(sample("MR_small_RLE.dcm"), ImplicitVRLittleEndian)
    converter.close()
    assert converter.started == 2


def test_a_process_that_did_not_start_pixel_free_converts_in_process():
    path = sample("MR_small_RLE.dcm")
    assert conversion.converted(path, ImplicitVRLittleEndian) == conversion.convert(path, ImplicitVRLittleEndian)
    assert conversion._shared is None
    with conversion.in_child() as converter:
        with conversion.converted(path, ImplicitVRLittleEndian) as there:  # type: ignore[union-attr]
            assert there.read() == conversion.convert(path, ImplicitVRLittleEndian)
        assert converter.started == 1 and converter.pid is not None
    assert converter.pid is None
    assert conversion._shared is None


def test_warming_starts_the_child_the_next_conversion_uses():
    conversion.warm()
    assert conversion._shared is None  # this process converts in-process
    with conversion.in_child() as converter:
        conversion.warm()
        pid = converter.pid
        assert pid is not None
        conversion.warm()
        path = sample("MR_small_RLE.dcm")
        with conversion.converted(path, ImplicitVRLittleEndian) as there:  # type: ignore[union-attr]
            assert there.read() == conversion.convert(path, ImplicitVRLittleEndian)
        assert (converter.pid, converter.started) == (pid, 1)


def test_an_interrupt_is_left_to_the_parent(tmp_path):
    """Ctrl-C reaches the whole process group; the child goes on until its input closes."""
    path, output = sample("MR_small_RLE.dcm"), tmp_path / "out"
    child = subprocess.Popen(child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    try:
        assert read_frame(child.stdout) == READY
        for interrupt in (False, True):
            if interrupt:
                child.send_signal(signal.SIGINT)
            write_frame(child.stdin, encode_request(ImplicitVRLittleEndian, path, output))
            child.stdin.flush()
            assert read_frame(child.stdout) == encode_answer(True)
            assert output.read_bytes() == conversion.convert(path, ImplicitVRLittleEndian)
        child.stdin.close()
        assert child.wait(60) == 0
    finally:
        child.kill()
        child.wait()
