"""The ``pacskit`` executable: the command line, started with fewer imports when the
command never touches pixel data.

Importing pydicom imports its pixel back-ends (NumPy, Pillow, pylibjpeg and its libjpeg,
openjpeg and rle plugins) and its test-data downloader (requests): about a third of pacskit's start-up. ``echo``, ``find``, ``get``,
``move``, ``nodes``, ``store`` and ``copy`` move encoded bytes only, so for them (and for ``--help``
and ``--version``) those modules are refused while pydicom loads, and pydicom records them
as unavailable for the rest of the process (:func:`started_pixel_free`). A file a peer
does not accept is converted in a child process (:mod:`pacskit.conversion`), closed when
the command ends. Every other command — ``serve`` renders images — starts with all of them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

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
        import_pydicom_without(PIXEL_MODULES)
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
    (:func:`import_pydicom_without`): pydicom then cannot decompress pixel data here."""
    return _pixel_free


def import_pydicom_without(modules: Sequence[str]) -> None:
    """Import pydicom while ``modules`` cannot be imported; they can be again afterwards
    (pydicom alone keeps them off, and :func:`started_pixel_free` says so). Does nothing
    once pydicom is imported."""
    global _pixel_free
    if "pydicom" in sys.modules:
        return
    refused = [name for name in modules if name not in sys.modules]
    for name in refused:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import pydicom  # noqa: F401

        _pixel_free = bool(refused)
    finally:
        for name in refused:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
