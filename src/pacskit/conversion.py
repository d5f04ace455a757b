"""Converting a file for a peer that does not accept its transfer syntax: decoded with
pydicom, decompressed, encoded again in an uncompressed little-endian syntax
(:func:`convert`) — in this process, or in a reused child process.

A process that started pixel-free (the command line's lean commands, ``store`` among
them: :func:`pacskit.cli.launch.started_pixel_free`) has refused pydicom's pixel
back-ends, NumPy, Pillow and pylibjpeg, to start faster, and cannot decompress. It
converts in a child, ``python -m pacskit.conversion`` (:class:`ChildConverter`), started
at the first file that needs it and kept for the next ones; the launcher closes it when
the command ends (:func:`close`). Any other process (a library user, ``serve``) converts
in-process, as :func:`converted` decides; :func:`in_child` sends a block's conversions to
a child anyway.

The protocol, on the child's standard input and output, is frames: a 4-byte big-endian
length, then that many bytes, at most :data:`MAX_FRAME` (:func:`write_frame`,
:func:`read_frame`). A request (:func:`encode_request`) is ``P`` (a path follows) or
``B`` (the file's bytes follow), one byte with the length of the target transfer syntax
UID, the UID, then the path (its file-system bytes) or the file's bytes. An answer
(:func:`encode_answer`) is ``O`` and the converted dataset, or ``E`` and a UTF-8 reason.
The child answers each request in turn and exits when its standard input closes. When
it dies mid-conversion, that one file fails (:class:`ConversionError`, with its exit
status and the last line it wrote to standard error); the next conversion starts a new
child.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import subprocess

MAX_FRAME = 1 << 30
"""The largest frame either side writes or reads (1 GiB): a file, or its conversion,
larger than that is refused — held in memory twice, it would not be sane to convert."""

_LENGTH = struct.Struct(">I")
PATH, DATA = b"P", b"B"
OK, ERROR = b"O", b"E"
CLOSE_TIMEOUT = 10.0
"""Seconds a child has to exit once its standard input is closed, before it is killed."""


class ConversionError(Exception):
    """A file could not be converted; the message says why."""


class FrameTooLarge(ConversionError):
    """A frame's length is over the limit: refused before its bytes are read or written."""


def write_frame(stream: BinaryIO | IO[bytes], payload: bytes, limit: int = MAX_FRAME) -> None:
    """Write one frame (not flushed).

    Raises:
        FrameTooLarge: ``payload`` is longer than ``limit``.
    """
    if len(payload) > limit:
        raise FrameTooLarge(f"a frame of {len(payload)} bytes is over the limit of {limit}")
    stream.write(_LENGTH.pack(len(payload)))
    stream.write(payload)


def read_frame(stream: BinaryIO | IO[bytes], limit: int = MAX_FRAME) -> bytes | None:
    """The next frame's payload, or None when the stream ends before one begins.

    Raises:
        FrameTooLarge: the frame's length is over ``limit`` (its bytes are not read).
        EOFError: the stream ends inside a frame.
    """
    header = _read_exactly(stream, _LENGTH.size, at_start=True)
    if header is None:
        return None
    (length,) = _LENGTH.unpack(header)
    if length > limit:
        raise FrameTooLarge(f"a frame of {length} bytes is over the limit of {limit}")
    payload = _read_exactly(stream, length, at_start=False)
    assert payload is not None
    return payload


def _read_exactly(stream: BinaryIO | IO[bytes], size: int, *, at_start: bool) -> bytes | None:
    parts: list[bytes] = []
    left = size
    while left:
        part = stream.read(left)
        if not part:
            if at_start and left == size:
                return None
            raise EOFError(f"the stream ended {left} bytes short of a frame's end")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def encode_request(syntax: str, source: bytes | Path) -> bytes:
    """A request to convert ``source`` (a file's bytes, or its path) to ``syntax``."""
    uid = syntax.encode("ascii")
    if not 0 < len(uid) <= 64:
        raise ValueError(f"not a transfer syntax UID: {syntax!r}")
    kind, body = (DATA, source) if isinstance(source, bytes) else (PATH, os.fsencode(source))
    return b"".join((kind, bytes((len(uid),)), uid, body))


def decode_request(payload: bytes) -> tuple[str, bytes | Path]:
    """The target syntax and the source of a request.

    Raises:
        ValueError: the request is malformed.
    """
    if len(payload) < 2 or payload[:1] not in (PATH, DATA):
        raise ValueError("a malformed conversion request")
    end = 2 + payload[1]
    syntax = payload[2:end].decode("ascii")
    body = payload[end:]
    return syntax, (body if payload[:1] == DATA else Path(os.fsdecode(body)))


def encode_answer(ok: bool, body: bytes) -> bytes:
    """An answer: the converted dataset (``ok``) or the reason it could not be."""
    return (OK if ok else ERROR) + body


def decode_answer(payload: bytes) -> bytes:
    """The converted dataset of an answer.

    Raises:
        ConversionError: the answer says why the file could not be converted, or is malformed.
    """
    if payload[:1] == OK:
        return payload[1:]
    if payload[:1] == ERROR:
        raise ConversionError(payload[1:].decode("utf-8", "replace"))
    raise ConversionError("the conversion process gave a malformed answer")


def convert(source: bytes | Path, syntax: str) -> bytes:
    """``source`` (a Part 10 file's bytes, or its path) decoded, decompressed if
    compressed, and its dataset encoded in ``syntax`` (PS3.5 A.1, A.2), in this process.

    Raises:
        Exception: whatever pydicom raises for a file it cannot read or decompress.
    """
    from pydicom import dcmread
    from pydicom.uid import UID
    from pynetdicom.dsutils import encode

    target = UID(syntax)
    dataset = dcmread(BytesIO(source) if isinstance(source, bytes) else source)
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        dataset.decompress(generate_instance_uid=False)
    encoded = encode(dataset, target.is_implicit_VR, target.is_little_endian, target.is_deflated)
    if encoded is None:
        raise ValueError("the dataset cannot be encoded")
    return encoded


def reason(exc: BaseException) -> str:
    """What a failed conversion's exception says (its type when it says nothing)."""
    return str(exc) or type(exc).__name__


def child_command(max_frame: int = MAX_FRAME) -> list[str]:
    """The command line of a conversion child."""
    return [sys.executable, "-m", "pacskit.conversion", "--max-frame", str(max_frame)]


class ChildConverter:
    """Converts in a child process (``python -m pacskit.conversion``), started at the
    first conversion, kept for the next ones, and started again after it dies. One
    conversion at a time (threads take turns). Closed by :meth:`close` (or at the end
    of a ``with`` block); it can be used again afterwards.

    Args:
        max_frame: the largest request or answer (the child is given the same limit).
        command: the child's command line (:func:`child_command` by default).
    """

    def __init__(self, *, max_frame: int = MAX_FRAME, command: Sequence[str] | None = None) -> None:
        self.max_frame = max_frame
        self.command = list(command) if command is not None else child_command(max_frame)
        self.started = 0
        """How many children have been started."""
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> ChildConverter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The running child's process ID, None when none runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the child now if none runs (it imports pydicom's pixel back-ends while
        this process goes on)."""
        with self._lock:
            self._running()

    def convert(self, source: bytes | Path, syntax: str) -> bytes:
        """``source`` converted to ``syntax`` by the child, as :func:`convert` does.

        Raises:
            ConversionError: the child could not convert it (its reason), the request or
                the answer is over :attr:`max_frame`, the child died converting it, or
                could not start.
        """
        request = encode_request(syntax, source)
        if len(request) > self.max_frame:
            raise FrameTooLarge(f"the file is larger than the conversion limit of {self.max_frame} bytes")
        with self._lock:
            try:
                process = self._running()
            except OSError as exc:
                raise ConversionError(f"the conversion process could not start ({reason(exc)})") from exc
            assert process.stdin is not None and process.stdout is not None
            try:
                write_frame(process.stdin, request, self.max_frame)
                process.stdin.flush()
                answer = read_frame(process.stdout, self.max_frame)
            except FrameTooLarge:
                self._stop()
                raise FrameTooLarge("the conversion process answered with a frame over the limit of "
                                    f"{self.max_frame} bytes") from None
            except (OSError, EOFError):
                answer = None
            if answer is None:
                raise ConversionError(self._ended())
        return decode_answer(answer)

    def close(self) -> None:
        """Close the child's standard input and wait for it to exit (killed after
        :data:`CLOSE_TIMEOUT` seconds)."""
        with self._lock:
            self._stop()
            self._forget_errors()

    def _running(self) -> subprocess.Popen[bytes]:
        import subprocess
        import tempfile

        if self._process is not None and self._process.poll() is None:
            return self._process
        self._stop()
        self._forget_errors()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open beside the child, closed by _forget_errors
        self._process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, env=_child_env(), close_fds=True)
        self.started += 1
        return self._process

    def _ended(self) -> str:
        """Why the child stopped answering (it is then stopped), for the file in flight."""
        process = self._process
        assert process is not None
        self._stop()
        code = process.returncode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        said = self._last_error_line()
        return f"the conversion process ended while converting it ({how})" + (f": {said}" if said else "")

    def _last_error_line(self) -> str:
        stderr = self._stderr
        if stderr is None:
            return ""
        stderr.seek(max(0, stderr.seek(0, os.SEEK_END) - 4096))
        lines = [line.strip() for line in stderr.read().decode("utf-8", "replace").splitlines()]
        return next((line for line in reversed(lines) if line), "")

    def _stop(self) -> None:
        import subprocess

        process, self._process = self._process, None
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                try:
                    if pipe is not None:
                        pipe.close()
                except OSError:
                    pass
            try:
                process.wait(CLOSE_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _forget_errors(self) -> None:
        stderr, self._stderr = self._stderr, None
        if stderr is not None:
            stderr.close()


def _child_env() -> dict[str, str]:
    """The environment with this process's pacskit first on the child's path, so that
    the child converts with the same code."""
    here = str(Path(__file__).resolve().parent.parent)
    paths = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + paths if paths else "")}


_lock = threading.Lock()
_shared: ChildConverter | None = None
_installed: ChildConverter | None = None


def converted(source: bytes | Path, syntax: str) -> bytes:
    """:func:`convert`, in a child when this process started pixel-free or inside
    :func:`in_child`, otherwise here.

    Raises:
        Exception: as :func:`convert` (in-process) or :meth:`ChildConverter.convert`.
    """
    child = _child()
    return convert(source, syntax) if child is None else child.convert(source, syntax)


def _child() -> ChildConverter | None:
    global _shared
    if _installed is not None:
        return _installed
    from pacskit.cli.launch import started_pixel_free

    if not started_pixel_free():
        return None
    with _lock:
        if _shared is None:
            _shared = ChildConverter()
        return _shared


def warm() -> None:
    """Start the child now if :func:`converted` would convert in one: a store that knows
    a file will need converting lets the child start while it sends the others."""
    child = _child()
    if child is not None:
        try:
            child.start()
        except OSError:
            pass  # the conversion itself will fail, with the reason


def close() -> None:
    """Close the child this pixel-free process converts in, if one was started."""
    global _shared
    with _lock:
        shared, _shared = _shared, None
    if shared is not None:
        shared.close()


@contextmanager
def in_child(converter: ChildConverter | None = None) -> Iterator[ChildConverter]:
    """Every conversion of this process, in every thread, by ``converter`` (a new
    :class:`ChildConverter` by default) for the block; it is closed at the end."""
    global _installed
    child = converter if converter is not None else ChildConverter()
    previous, _installed = _installed, child
    try:
        yield child
    finally:
        _installed = previous
        child.close()


def serve(requests: BinaryIO | IO[bytes], answers: BinaryIO | IO[bytes], max_frame: int = MAX_FRAME) -> int:
    """The child's loop: answer each request of ``requests`` on ``answers`` until
    ``requests`` ends; the exit status (0 at its end, 2 after a frame it cannot read)."""
    while True:
        try:
            request = read_frame(requests, max_frame)
        except (FrameTooLarge, EOFError) as exc:
            _answer(answers, _refusal(reason(exc), max_frame), max_frame)
            return 2
        if request is None:
            return 0
        try:
            syntax, source = decode_request(request)
            answer = encode_answer(True, convert(source, syntax))
        except Exception as exc:  # noqa: BLE001 - any failure is this file's answer
            answer = _refusal(reason(exc), max_frame)
        if len(answer) > max_frame:
            answer = _refusal(f"its conversion, {len(answer) - 1} bytes, is over the limit of {max_frame} bytes",
                              max_frame)
        _answer(answers, answer, max_frame)


def _refusal(text: str, max_frame: int) -> bytes:
    return encode_answer(False, text.encode("utf-8", "replace")[:max_frame - 1])


def _answer(answers: BinaryIO | IO[bytes], answer: bytes, max_frame: int) -> None:
    write_frame(answers, answer, max_frame)
    answers.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pacskit.conversion [--max-frame N]``: the child. Frames go out on what
    was standard output; anything else printed goes to standard error. An interrupt
    (Ctrl-C reaches the whole process group) is ignored: the parent handles it, and the
    child exits when its input closes."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it closes our input
    args = list(sys.argv[1:] if argv is None else argv)
    max_frame = int(args[args.index("--max-frame") + 1]) if "--max-frame" in args else MAX_FRAME
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with answers:
        return serve(sys.stdin.buffer, answers, max_frame)


if __name__ == "__main__":
    sys.exit(main())
