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
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pydicom.datadict import tag_for_keyword

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

    @property
    def identifies_instances(self) -> bool:
        """Whether every path names one instance: the template has ``{SOPInstanceUID}``."""
        return "SOPInstanceUID" in self.fields

    def relative_path(self, values: Mapping[str, Any] | Any) -> PurePosixPath:
        """The relative path for an instance; ``values`` is a Dataset or a mapping."""
        parts = {}
        for name in self.fields:
            raw = values.get(name, None) if hasattr(values, "get") else getattr(values, name, None)
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
        return safe_join(root, self.relative_path(values))


class _FieldValue:
    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def __format__(self, spec: str) -> str:
        if spec:
            try:
                return sanitize_component(format(int(str(self.raw)), spec))
            except (TypeError, ValueError):
                pass
        if isinstance(self.raw, (list, tuple)) or type(self.raw).__name__ == "MultiValue":
            return sanitize_component("_".join(str(v) for v in self.raw))
        return sanitize_component(self.raw)


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
