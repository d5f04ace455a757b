"""Path templates for stored instances, and sanitising of every peer-supplied path part.

A template such as ``{PatientID}/{StudyInstanceUID}/{SOPInstanceUID}.dcm`` is the user's
and trusted; every value put into it comes from a peer and is not: each becomes a single
safe path component (no separators, no ``.``/``..``, no control characters, bounded
length), and the joined path is checked to stay inside the output folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pacskit.errors import OutputError, UsageError

DEFAULT_LAYOUT = "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"
MAX_COMPONENT = 120
EMPTY_VALUE = "unknown"
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-+=^@,]")


def sanitize_component(value: object) -> str:
    """Turn a peer-supplied value into one safe path component.

    Characters outside ``A-Z a-z 0-9 . _ - + = ^ @ ,`` become ``_``; a value that is
    empty becomes ``unknown``; leading dots become ``_`` (so ``..`` and hidden names
    cannot occur); values longer than 120 characters are cut and suffixed with a hash.
    """
    text = _UNSAFE.sub("_", str(value if value is not None else "").strip())
    if not text:
        return EMPTY_VALUE
    stripped = text.lstrip(".")
    text = "_" * (len(text) - len(stripped)) + stripped
    if len(text) > MAX_COMPONENT:
        digest = hashlib.sha1(text.encode()).hexdigest()[:12]
        text = f"{text[: MAX_COMPONENT - 13]}-{digest}"
    return text


class Layout:
    """A path template whose fields are DICOM keywords.

    A template without ``{SOPInstanceUID}`` (``{Modality}/{InstanceNumber:04d}.dcm``) may
    give two instances the same path; the folder they are written into tells them apart
    (:class:`~pacskit.storage.FolderSink`).

    Args:
        template: e.g. ``{PatientID}/{StudyInstanceUID}/{SOPInstanceUID}.dcm``; a field
            may carry a format spec for numbers, e.g. ``{InstanceNumber:05d}``.

    Raises:
        UsageError: the template is malformed, absolute, escapes with ``..``, or names an
            unknown keyword.
    """

    def __init__(self, template: str = DEFAULT_LAYOUT) -> None:
        self.template = template
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise UsageError(f"invalid layout {template!r}: {exc}") from None
        from pydicom.datadict import tag_for_keyword

        fields: list[str] = []
        for literal, name, _spec, conversion in parsed:
            if ".." in PurePosixPath(literal).parts:
                raise UsageError(f"invalid layout {template!r}: '..' is not allowed")
            if name is None:
                continue
            if conversion or not name or tag_for_keyword(name) is None:
                raise UsageError(f"invalid layout {template!r}: {{{name}}} is not a DICOM keyword")
            fields.append(name)
        if template.startswith("/"):
            raise UsageError(f"invalid layout {template!r}: it must be relative")
        if not template.strip() or template.endswith("/"):
            raise UsageError(f"invalid layout {template!r}: it must end in a file name")
        self.fields = tuple(dict.fromkeys(fields))
        self._folder_parts, self._name_parts = _split_at_last_separator(parsed)
        self._plain = not any(spec and "{" in spec for _, _, spec, _ in parsed)
        self._folders: dict[tuple[str, tuple[str, ...]], str] = {}

    @property
    def identifies_instances(self) -> bool:
        """Whether every path names one instance: the template has ``{SOPInstanceUID}``."""
        return "SOPInstanceUID" in self.fields

    def relative_path(self, values: Mapping[str, Any] | Any) -> PurePosixPath:
        """The relative path for an instance; ``values`` is a Dataset or a mapping."""
        parts = {}
        for name in self.fields:
            raw: Any = values.get(name, None) if hasattr(values, "get") else getattr(values, name, None)
            if hasattr(raw, "value"):
                raw = raw.value
            parts[name] = _FieldValue(raw)
        rendered = self.template.format_map(parts)
        return PurePosixPath(*[p for p in rendered.split("/") if p])

    def path_in(self, root: Path, values: Mapping[str, Any] | Any) -> Path:
        """The absolute path for an instance under ``root``, checked to stay inside it.

        Raises:
            OutputError: the path would leave ``root`` (it cannot, by construction; this
                is the last line of defence).
        """
        folder, name = self.locate(os.path.abspath(root), values)
        return Path(join_name(folder, name))

    def locate(self, base: str, values: Mapping[str, Any] | Any) -> tuple[str, str]:
        """The folder (absolute, normalised, inside ``base``) and the file name of the
        instance's path under the absolute folder ``base``: :meth:`path_in`, split. The
        folder of a set of values is worked out once and remembered.

        Raises:
            OutputError: as :meth:`path_in`.
        """
        if not self._plain:
            return os.path.split(safe_join(Path(base), self.relative_path(values)))
        raws = tuple(_raw_value(values, field) for _, field, _ in self._folder_parts if field)
        key = (base, raws)
        remembered = all(type(raw) is str for raw in raws)
        folder = self._folders.get(key) if remembered else None
        if folder is None:
            folder = _folder_in(base, _render(self._folder_parts, iter(raws)))
            if remembered:
                if len(self._folders) >= MAX_REMEMBERED_FOLDERS:
                    self._folders.clear()
                self._folders[key] = folder
        name = _render(self._name_parts, (_raw_value(values, f) for _, f, _ in self._name_parts if f))
        if name in ("", ".", "..") or "/" in name:
            return os.path.split(safe_join(Path(base), self.relative_path(values)))
        return folder, name


MAX_REMEMBERED_FOLDERS = 4096

_Part = tuple[str, str | None, str]


def _split_at_last_separator(parsed: list[tuple[str, str | None, str | None, str | None]]
                             ) -> tuple[tuple[_Part, ...], tuple[_Part, ...]]:
    """A parsed template as the parts of its folder and those of its file name (after its
    last ``/``, which is always in a literal: a value never holds one)."""
    parts = [(literal, name, spec or "") for literal, name, spec, _ in parsed]
    for index in range(len(parts) - 1, -1, -1):
        literal, name, spec = parts[index]
        cut = literal.rfind("/")
        if cut >= 0:
            folder = (*parts[:index], (literal[:cut + 1], None, ""))
            return folder, ((literal[cut + 1:], name, spec), *parts[index + 1:])
    return (), tuple(parts)


def _raw_value(values: Mapping[str, Any] | Any, name: str) -> Any:
    raw: Any = values.get(name, None) if hasattr(values, "get") else getattr(values, name, None)
    return raw.value if hasattr(raw, "value") else raw


def _render(parts: tuple[_Part, ...], raws: Iterator[Any]) -> str:
    return "".join(literal + _component(next(raws), spec) if name else literal
                   for literal, name, spec in parts)


def _folder_in(base: str, rendered: str) -> str:
    folder = os.path.normpath(os.path.join(base, *[p for p in rendered.split("/") if p]))
    if folder != base and not folder.startswith(base.rstrip(os.sep) + os.sep):
        raise OutputError(f"refusing to write outside {base}: {rendered}")
    return folder


def join_name(folder: str, name: str) -> str:
    """``os.path.join(folder, name)`` for a file name of one component."""
    return folder + name if folder.endswith(os.sep) else folder + os.sep + name


def _component(raw: Any, spec: str) -> str:
    if spec:
        try:
            return sanitize_component(format(int(str(raw)), spec))
        except (TypeError, ValueError):
            pass
    if isinstance(raw, (list, tuple)) or type(raw).__name__ == "MultiValue":
        return sanitize_component("_".join(str(v) for v in raw))
    return sanitize_component(raw)


class _FieldValue:
    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def __format__(self, spec: str) -> str:
        return _component(self.raw, spec)


def safe_join(root: Path, relative: PurePosixPath) -> Path:
    """``root / relative``, refusing anything that resolves outside ``root``.

    Raises:
        OutputError: the result is not inside ``root``.
    """
    base = os.path.abspath(root)
    target = os.path.normpath(os.path.join(base, *relative.parts))
    if not target.startswith(base.rstrip(os.sep) + os.sep):
        raise OutputError(f"refusing to write outside {root}: {relative}")
    return Path(target)
