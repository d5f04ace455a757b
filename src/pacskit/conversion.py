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

No dataset crosses the pipes: the child reads the file from its path and writes the
converted dataset to a file the parent named, in a private temporary folder of the
parent's (``TMPDIR``, :func:`tempfile.mkdtemp`); an instance held in memory is written
there first. The parent opens the converted file and removes its name at once, whatever
the answer, so a file of any size is converted with no copy of it in the parent's
memory, and no name is left once a conversion ends, done, failed, timed out or with the
child killed.

The protocol, on the child's standard input and output, is frames: a 4-byte big-endian
length, then that many bytes, at most :data:`MAX_FRAME` (:func:`write_frame`,
:func:`read_frame`). The child first sends ``R`` (:data:`READY`) once it has imported
pydicom and its pixel back-ends. A request (:func:`encode_request`) is the target
transfer syntax UID, the source's path and the output's path (file-system bytes),
separated by NUL bytes. An answer (:func:`encode_answer`) is ``O`` (the output holds the
whole converted dataset) or ``E`` and a UTF-8 reason. The child answers each request in
turn and exits when its standard input closes.

A conversion may take :attr:`ChildConverter.timeout` seconds from the moment the child
is ready (its start has :data:`START_TIMEOUT` of its own): past it the child is killed
and that one file fails (:class:`ConversionTimeout`). When the child dies
mid-conversion, that file fails too (:class:`ConversionError`, with its exit status and
the last line it wrote to standard error). Either way the next conversion starts a new
child.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from io import BytesIO
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import subprocess

    from pydicom import Dataset
    from pydicom.uid import UID

MAX_FRAME = 1 << 16
"""The largest frame either side writes or reads (64 KiB): a request's paths, or an
answer's reason (cut to fit). Datasets go through files, not frames."""

DEFAULT_TIMEOUT = 60.0
"""Seconds a conversion may take when no timeout is given (the default DIMSE timeout,
:attr:`pacskit.settings.Settings.dimse_timeout`)."""

START_TIMEOUT = 60.0
"""Seconds a child has to import pydicom and its pixel back-ends and say it is ready."""

CLOSE_TIMEOUT = 10.0
"""Seconds a child has to exit once its standard input is closed, before it is killed."""

_LENGTH = struct.Struct(">I")
READY = b"R"
OK, ERROR = b"O", b"E"
_SEPARATOR = b"\0"


class ConversionError(Exception):
    """A file could not be converted; the message says why."""


class ConversionTimeout(ConversionError):
    """The child took longer than the timeout to convert a file, and was killed."""


class FrameTooLarge(ConversionError):
    """A frame's length is over the limit: refused before its bytes are read or written."""


def write_frame(stream: BinaryIO | IO[bytes], payload: bytes, limit: int = MAX_FRAME) -> None:
    """Write one frame (not flushed).

    Raises:
        FrameTooLarge: ``payload`` is longer than ``limit``.
    """
    if len(payload) > limit:
        raise FrameTooLarge(f"a frame of {len(payload)} bytes is over the limit of {limit}")
    stream.write(_LENGTH.pack(len(payload)) + payload)


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


def encode_request(syntax: str, source: Path, output: Path) -> bytes:
    """A request to convert the file at ``source`` to ``syntax``, written to ``output``."""
    uid = syntax.encode("ascii")
    paths = [os.fsencode(source), os.fsencode(output)]
    if not 0 < len(uid) <= 64 or _SEPARATOR in uid:
        raise ValueError(f"not a transfer syntax UID: {syntax!r}")
    if not all(paths) or any(_SEPARATOR in path for path in paths):
        raise ValueError("a path is empty or holds a NUL byte")
    return _SEPARATOR.join((uid, *paths))


def decode_request(payload: bytes) -> tuple[str, Path, Path]:
    """The target syntax, the source and the output of a request.

    Raises:
        ValueError: the request is malformed.
    """
    fields = payload.split(_SEPARATOR)
    if len(fields) != 3 or not all(fields):
        raise ValueError("a malformed conversion request")
    uid, source, output = fields
    return uid.decode("ascii"), Path(os.fsdecode(source)), Path(os.fsdecode(output))


def encode_answer(ok: bool, reason: bytes = b"") -> bytes:
    """An answer: the output holds the converted dataset (``ok``), or why it could not."""
    return OK if ok else ERROR + reason


def check_answer(payload: bytes) -> None:
    """Nothing for an answer that says the output holds the converted dataset.

    Raises:
        ConversionError: the answer says why the file could not be converted, or is malformed.
    """
    if payload == OK:
        return
    if payload[:1] == ERROR:
        raise ConversionError(payload[1:].decode("utf-8", "replace"))
    raise ConversionError("the conversion process gave a malformed answer")


def convert(source: bytes | Path, syntax: str) -> bytes:
    """``source`` (a Part 10 file's bytes, or its path) decoded, decompressed if
    compressed, and its dataset encoded in ``syntax`` (PS3.5 A.1, A.2), in this process.

    Raises:
        Exception: whatever pydicom raises for a file it cannot read or decompress.
    """
    from pydicom.uid import UID

    encoded = BytesIO()
    _write(_decoded(source), UID(syntax), encoded)
    return encoded.getvalue()


def convert_file(source: Path, syntax: str, output: Path) -> None:
    """:func:`convert`, its dataset written to ``output`` (created or emptied) instead
    of returned: the child's conversion.

    Raises:
        Exception: as :func:`convert`, or an error writing ``output``.
    """
    from pydicom.uid import UID

    dataset = _decoded(source)
    with output.open("wb") as stream:
        _write(dataset, UID(syntax), stream)


def _decoded(source: bytes | Path) -> Dataset:
    from pydicom import dcmread

    dataset = dcmread(BytesIO(source) if isinstance(source, bytes) else source)
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        dataset.decompress(generate_instance_uid=False)
    return dataset


def _write(dataset: Dataset, target: UID, stream: BinaryIO | IO[bytes]) -> None:
    """``dataset`` encoded in ``target`` onto ``stream`` (as pynetdicom's ``encode``,
    which holds it in memory, does; deflated syntaxes through it)."""
    from pydicom.filebase import DicomFileLike
    from pydicom.filewriter import write_dataset

    if target.is_deflated:
        from pynetdicom.dsutils import encode

        encoded = encode(dataset, target.is_implicit_VR, target.is_little_endian, True)
        if encoded is None:
            raise ValueError("the dataset cannot be encoded")
        stream.write(encoded)
        return
    writer = DicomFileLike(stream)
    writer.is_implicit_VR = target.is_implicit_VR
    writer.is_little_endian = target.is_little_endian
    write_dataset(writer, dataset)


def reason(exc: BaseException) -> str:
    """What a failed conversion's exception says (its type when it says nothing)."""
    return str(exc) or type(exc).__name__


def child_command(max_frame: int = MAX_FRAME) -> list[str]:
    """The command line of a conversion child."""
    return [sys.executable, "-m", "pacskit.conversion", "--max-frame", str(max_frame)]


class _Late(Exception):
    """No whole frame came from the child in time."""


class ChildConverter:
    """Converts in a child process (``python -m pacskit.conversion``), started at the
    first conversion, kept for the next ones, and started again after it dies or is
    killed for being late. One conversion at a time (threads take turns). Closed by
    :meth:`close` (or at the end of a ``with`` block); it can be used again afterwards.

    Args:
        max_frame: the largest request or answer (the child is given the same limit).
        command: the child's command line (:func:`child_command` by default).
        timeout: the seconds a conversion may take when :meth:`open` is given none.
        directory: where the private temporary folder goes (``TMPDIR`` by default).
    """

    def __init__(self, *, max_frame: int = MAX_FRAME, command: Sequence[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, directory: Path | None = None) -> None:
        self.max_frame = max_frame
        self.command = list(command) if command is not None else child_command(max_frame)
        self.timeout = timeout
        self.directory = directory
        self.started = 0
        """How many children have been started."""
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._ready = False
        self._received = bytearray()
        self._folder: Path | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> ChildConverter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The running child's process ID, None when none runs."""
        return self._process.pid if self._process is not None else None

    @property
    def folder(self) -> Path | None:
        """The private temporary folder, while one exists."""
        return self._folder

    def start(self) -> None:
        """Start the child now if none runs (it imports pydicom's pixel back-ends while
        this process goes on)."""
        with self._lock:
            self._running()

    def convert(self, source: bytes | Path, syntax: str, timeout: float | None = None) -> bytes:
        """:meth:`open`'s converted dataset, read into memory.

        Raises:
            ConversionError: as :meth:`open`.
        """
        with self.open(source, syntax, timeout) as converted:
            return converted.read()

    def open(self, source: bytes | Path, syntax: str, timeout: float | None = None) -> BinaryIO:
        """``source`` converted to ``syntax`` by the child, as :func:`convert` does: a
        temporary file, already without a name, open for reading at its start (the
        caller closes it).

        Raises:
            ConversionTimeout: the child took longer than ``timeout`` seconds
                (:attr:`timeout` when None) once ready, and was killed.
            ConversionError: the child could not convert it (its reason), the request is
                over :attr:`max_frame`, the child died converting it, or could not start.
        """
        limit = self.timeout if timeout is None else timeout
        with self._lock:
            folder = self._private_folder()
            made: list[Path] = []
            try:
                made.append(_new_file(folder, ".out"))
                if isinstance(source, bytes):
                    made.append(_held_file(folder, source))
                    path = made[1]
                else:
                    path = source.absolute()  # the child's working folder may differ
                request = encode_request(syntax, path, made[0])
                if len(request) > self.max_frame:
                    raise FrameTooLarge(f"the conversion request is over the limit of {self.max_frame} bytes")
                self._exchange(request, limit)
                return made[0].open("rb")
            finally:
                for name in made:
                    name.unlink(missing_ok=True)

    def _exchange(self, request: bytes, timeout: float) -> None:
        """Send ``request`` and check the child's answer (the lock held)."""
        try:
            process = self._running()
        except OSError as exc:
            raise ConversionError(f"the conversion process could not start ({reason(exc)})") from exc
        assert process.stdin is not None
        late = f"the conversion process did not start within {START_TIMEOUT:g} s and was stopped"
        try:
            write_frame(process.stdin, request, self.max_frame)
            process.stdin.flush()
            if not self._ready:
                if self._receive(START_TIMEOUT) != READY:
                    raise EOFError
                self._ready = True
            late = f"the conversion took longer than {timeout:g} s and was stopped"
            answer = self._receive(timeout)
        except _Late:
            self._kill()
            raise ConversionTimeout(late) from None
        except FrameTooLarge:
            self._kill()
            raise FrameTooLarge("the conversion process answered with a frame over the limit of "
                                f"{self.max_frame} bytes") from None
        except (OSError, EOFError):
            answer = None
        if answer is None:
            raise ConversionError(self._ended())
        check_answer(answer)

    def _receive(self, timeout: float) -> bytes | None:
        """The child's next frame, None when its output ends first.

        Raises:
            _Late: no whole frame within ``timeout`` seconds.
            FrameTooLarge: the frame is over :attr:`max_frame`.
            EOFError: the output ends inside a frame.
        """
        import select

        assert self._process is not None and self._process.stdout is not None
        fd = self._process.stdout.fileno()
        deadline = time.monotonic() + timeout
        received = self._received
        while True:
            if len(received) >= _LENGTH.size:
                (length,) = _LENGTH.unpack_from(received)
                if length > self.max_frame:
                    raise FrameTooLarge(f"a frame of {length} bytes is over the limit of {self.max_frame}")
                end = _LENGTH.size + length
                if len(received) >= end:
                    frame = bytes(received[_LENGTH.size:end])
                    del received[:end]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Late
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                if received:
                    raise EOFError("the conversion process's output ended inside a frame")
                return None
            received += chunk

    def close(self) -> None:
        """Close the child's standard input and wait for it to exit (killed after
        :data:`CLOSE_TIMEOUT` seconds); remove the private temporary folder."""
        with self._lock:
            self._stop()
            self._forget_errors()
            folder, self._folder = self._folder, None
            if folder is not None:
                import shutil

                shutil.rmtree(folder, ignore_errors=True)

    def _private_folder(self) -> Path:
        import tempfile

        if self._folder is None or not self._folder.is_dir():
            self._folder = Path(tempfile.mkdtemp(prefix="pacskit-conversion-", dir=self.directory))
        return self._folder

    def _running(self) -> subprocess.Popen[bytes]:
        import subprocess
        import tempfile

        if self._process is not None and self._process.poll() is None:
            return self._process
        self._stop()
        self._forget_errors()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open beside the child, closed by _forget_errors
        self._process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, env=_child_env(), close_fds=True, bufsize=0)
        self._ready = False
        self._received.clear()
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

    def _kill(self) -> None:
        process = self._process
        if process is not None:
            process.kill()
            self._stop()

    def _stop(self) -> None:
        import subprocess

        process, self._process = self._process, None
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                with suppress(OSError):
                    if pipe is not None:
                        pipe.close()
            try:
                process.wait(CLOSE_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _forget_errors(self) -> None:
        stderr, self._stderr = self._stderr, None
        if stderr is not None:
            stderr.close()


def _new_file(folder: Path, suffix: str) -> Path:
    import tempfile

    fd, name = tempfile.mkstemp(suffix, dir=folder)
    os.close(fd)
    return Path(name)


def _held_file(folder: Path, data: bytes) -> Path:
    """``data`` written to a new file of ``folder`` (removed if writing it fails)."""
    path = _new_file(folder, ".dcm")
    try:
        path.write_bytes(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _child_env() -> dict[str, str]:
    """The environment with this process's pacskit first on the child's path, so that
    the child converts with the same code."""
    here = str(Path(__file__).resolve().parent.parent)
    paths = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + paths if paths else "")}


_lock = threading.Lock()
_shared: ChildConverter | None = None
_installed: ChildConverter | None = None


def converted(source: bytes | Path, syntax: str, timeout: float | None = None) -> bytes | BinaryIO:
    """:func:`convert`, in a child (:meth:`ChildConverter.open`: a temporary file the
    caller closes; ``timeout``, the child's own when None) when this process started
    pixel-free or inside :func:`in_child`, otherwise here (the bytes; no timeout).

    Raises:
        Exception: as :func:`convert` (in-process) or :meth:`ChildConverter.open`.
    """
    child = _child()
    return convert(source, syntax) if child is None else child.open(source, syntax, timeout)


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
    """The child's loop: say it is ready, then answer each request of ``requests`` on
    ``answers`` until ``requests`` ends; the exit status (0 at its end, 2 after a frame
    it cannot read)."""
    _answer(answers, READY, max_frame)
    while True:
        try:
            request = read_frame(requests, max_frame)
        except (FrameTooLarge, EOFError) as exc:
            _answer(answers, _refusal(reason(exc), max_frame), max_frame)
            return 2
        if request is None:
            return 0
        try:
            syntax, source, output = decode_request(request)
            convert_file(source, syntax, output)
            answer = encode_answer(True)
        except Exception as exc:  # noqa: BLE001 - any failure is this file's answer
            answer = _refusal(reason(exc), max_frame)
        _answer(answers, answer, max_frame)


def _refusal(text: str, max_frame: int) -> bytes:
    return encode_answer(False, text.encode("utf-8", "replace")[:max_frame - 1])


def _answer(answers: BinaryIO | IO[bytes], answer: bytes, max_frame: int) -> None:
    write_frame(answers, answer, max_frame)
    answers.flush()


def _import_codecs() -> None:
    """Import what a conversion needs before the child says it is ready, so that its
    start does not count in a conversion's time."""
    import pydicom.filewriter
    import pydicom.pixels  # noqa: F401

    with suppress(ImportError):
        import numpy  # noqa: F401


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
    _import_codecs()
    with answers:
        return serve(sys.stdin.buffer, answers, max_frame)


if __name__ == "__main__":
    sys.exit(main())
