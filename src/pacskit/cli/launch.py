"""The ``pacskit`` executable: the command line, started with fewer imports when the
command never touches pixel data.

Importing pydicom imports its pixel back-ends (NumPy, Pillow, pylibjpeg and its libjpeg,
openjpeg and rle plugins) and its test-data downloader (requests): about a third of
pacskit's start-up. ``echo``, ``find``, ``get``, ``move``, ``nodes``, ``store`` and ``copy``
move encoded bytes only, so for them (and for ``--help`` and ``--version``) those modules
are refused while pydicom loads — whenever something first imports it, which for an echo
or a ``--help`` is never — and pydicom records them as unavailable for the rest of the
process (:func:`started_pixel_free`). A file a peer does not accept is converted in a child
process (:mod:`pacskit.conversion`), closed when the command ends. Every other command —
``serve`` renders images — starts with all of them.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

PIXEL_FREE_COMMANDS = frozenset({"echo", "find", "get", "move", "nodes", "store", "copy"})
PIXEL_COMMANDS = frozenset({"serve", "archive"})
PIXEL_MODULES = ("numpy", "PIL", "pylibjpeg", "libjpeg", "openjpeg", "rle", "requests")
DATA_COMMANDS = frozenset({"get", "move", "copy", "store", "receive", "serve", "archive"})
"""The commands that may move large instances: the C allocator is tuned for them
(:func:`pacskit.allocator.keep_freed_memory`)."""
GLOBAL_OPTIONS_WITH_VALUE = frozenset({
    "--config", "-c", "--aet", "--port", "--max-pdu", "--acse-timeout", "--dimse-timeout",
    "--network-timeout", "--connect-timeout",
})


NO_COMMAND = ""
"""What :func:`command_word` answers when no command is named."""
EVERY_COMMAND = "*"
"""Load every command (shell completion, or a command word not recognised as one)."""

_pixel_free = False


def main() -> None:
    """Run the ``pacskit`` command line on ``sys.argv``. ``pacskit --version`` answers
    before anything is imported."""
    if sys.argv[1:] == ["--version"]:
        from pacskit import __version__

        print(f"pacskit {__version__}")
        return
    command = command_word(sys.argv[1:])
    if command != NO_COMMAND and pixel_free(sys.argv[1:]):
        defer_pydicom_without(PIXEL_MODULES)
    if command in DATA_COMMANDS:
        from pacskit.allocator import keep_freed_memory

        keep_freed_memory()
    from pacskit.cli.main import main as run

    try:
        run()
    finally:
        conversion = sys.modules.get("pacskit.conversion")
        if conversion is not None:
            conversion.close()


def command_word(args: Sequence[str]) -> str:
    """The command the words name (its first word that is not a root option or an
    option's value), or :data:`NO_COMMAND` when none is."""
    arguments = iter(args)
    for argument in arguments:
        if argument in GLOBAL_OPTIONS_WITH_VALUE:
            next(arguments, None)
        elif not argument.startswith("-"):
            return argument
    return NO_COMMAND


def pixel_free(args: Sequence[str]) -> bool:
    """Whether the command line surely runs a command that never decodes pixel data: its
    first word is one of :data:`PIXEL_FREE_COMMANDS` (or there is none), and no word
    names a command that may."""
    if PIXEL_COMMANDS.intersection(args):
        return False
    command = command_word(args)
    return command == NO_COMMAND or command in PIXEL_FREE_COMMANDS


def started_pixel_free() -> bool:
    """Whether this process imported pydicom with modules refused
    (:func:`import_pydicom_without`, or :func:`defer_pydicom_without` once pydicom is
    imported; asked while the deferral is pending, pydicom is imported now): pydicom then
    cannot decompress pixel data here."""
    if any(isinstance(finder, _RefusingFirstImport) for finder in sys.meta_path):
        import pydicom  # noqa: F401
    return _pixel_free


def defer_pydicom_without(modules: Sequence[str]) -> None:
    """Have pydicom, whenever something first imports it, load as
    :func:`import_pydicom_without` loads it. A command that never needs pydicom (an echo,
    a ``--help``) then does not pay for it. Does nothing once pydicom is imported."""
    if "pydicom" in sys.modules or any(isinstance(f, _RefusingFirstImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _RefusingFirstImport(tuple(modules)))


def import_pydicom_without(modules: Sequence[str]) -> None:
    """Import pydicom while ``modules`` cannot be imported; they can be again afterwards
    (pydicom alone keeps them off, and :func:`started_pixel_free` says so). Does nothing
    once pydicom is imported."""
    if "pydicom" in sys.modules:
        return
    with _refused(modules) as refused:
        import pydicom  # noqa: F401

        _set_pixel_free(bool(refused))


@contextlib.contextmanager
def _refused(modules: Sequence[str]) -> Iterator[list[str]]:
    """The ``modules`` not yet imported (the list given) cannot be while the block runs."""
    names = [name for name in modules if name not in sys.modules]
    for name in names:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield names
    finally:
        for name in names:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


def _set_pixel_free(value: bool) -> None:
    global _pixel_free
    _pixel_free = value


class _RefusingFirstImport(importlib.abc.MetaPathFinder):
    """Finds ``pydicom`` as the other finders do, once, with a loader that runs its
    package's code while ``modules`` are refused; then steps aside."""

    def __init__(self, modules: tuple[str, ...]) -> None:
        self.modules = modules

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "pydicom":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RefusingLoader(spec.loader, self.modules)
        return spec


class _RefusingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, modules: tuple[str, ...]) -> None:
        self.loader = loader
        self.modules = modules

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with _refused(self.modules) as refused:
            self.loader.exec_module(module)
            _set_pixel_free(bool(refused))
