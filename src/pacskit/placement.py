"""Which file an instance goes to when its layout path does not name it alone.

Under a layout without ``{SOPInstanceUID}`` (``{Modality}/{InstanceNumber:04d}.dcm``) two
instances may get the same path. The first is written there, the next to the first of
``0001-2.dcm``, ``0001-3.dcm``... that is free or already holds it. Which instance a file
holds is read from its header (its SOP Instance UID), once, and remembered: a re-run
finds every instance where the last run put it, and a file whose header cannot be read
holds no instance pacskit knows of, so it is neither replaced nor taken for one.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from pacskit.encoded import HeaderValues, dataset_encoding, elements_up_to, parse_file_meta

HEADER_READ = 64 << 10
SOP_INSTANCE_UID = 0x00080018
MEDIA_STORAGE_SOP_INSTANCE_UID = 0x0003
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def is_uid(value: str) -> bool:
    """Whether ``value`` is a well-formed UID (PS3.5 9.1), which a path component keeps
    unchanged."""
    return len(value) <= 64 and _UID.fullmatch(value) is not None


def numbered(path: Path, number: int) -> Path:
    """``path`` for the first instance, ``name-2.ext``, ``name-3.ext``... for the next."""
    return path if number == 1 else path.with_name(f"{path.stem}-{number}{path.suffix}")


def instance_in(path: Path) -> str | None:
    """The SOP Instance UID of the instance in the Part 10 file ``path``, from the first
    bytes of its dataset (or else its file meta information); None if there is no file
    or it holds no instance that can be read."""
    try:
        with path.open("rb") as file:
            head = file.read(HEADER_READ)
    except OSError:
        return None
    found = dataset_encoding(head)
    if found is not None:
        offset, encoding = found
        try:
            elements = elements_up_to(head, offset, encoding, SOP_INSTANCE_UID)
            uid = HeaderValues(head, elements, encoding).get("SOPInstanceUID")
        except ValueError:
            uid = None
        if isinstance(uid, str) and uid:
            return uid
    if head[128:132] != b"DICM":
        return None
    return parse_file_meta(head)[0].get(MEDIA_STORAGE_SOP_INSTANCE_UID) or None


class Placements:
    """The files of a folder's shared layout paths, and the instance each holds.

    Safe to use from several threads: a free file is reserved for the instance it is
    given to, so that two instances written at once never get the same one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Path, str | None] = {}
        self._found: dict[Path, dict[str, Path]] = {}
        self._next: dict[Path, int] = {}

    def find(self, target: Path, uid: str) -> tuple[Path, bool]:
        """Where the instance ``uid`` goes for the layout path ``target``, and whether
        it is already there. A free file is reserved for it (see :meth:`release`)."""
        with self._lock:
            found = self._found.setdefault(target, {})
            if uid in found:
                return found[uid], True
            number = self._next.get(target, 1)
            while True:
                place = numbered(target, number)
                if place in self._held:
                    held = self._held[place]
                elif not os.path.lexists(place):
                    self._held[place] = uid
                    found[uid] = place
                    self._next[target] = number + 1
                    return place, False
                else:
                    held = self._held[place] = instance_in(place)
                if held is not None:
                    found.setdefault(held, place)
                    if held == uid:
                        self._next[target] = number + 1
                        return place, True
                number += 1

    def taken(self, target: Path, uid: str, place: Path) -> tuple[Path, bool]:
        """Another writer took ``place`` first: what it holds is read again, and the
        instance ``uid`` placed anew (as :meth:`find`)."""
        with self._lock:
            self._forget(target, uid, place)
        return self.find(target, uid)

    def release(self, target: Path, uid: str, place: Path) -> None:
        """Give up the file reserved for ``uid``: it could not be written."""
        with self._lock:
            self._forget(target, uid, place)

    def _forget(self, target: Path, uid: str, place: Path) -> None:
        self._held.pop(place, None)
        found = self._found.get(target, {})
        if found.get(uid) == place:
            del found[uid]
        self._next[target] = 1
