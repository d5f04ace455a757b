"""Media types: Content-Type and Accept header fields (RFC 9110 8.3, 12.5.1) as PS3.18
8.7 uses them, with the ``type`` and ``transfer-syntax`` parameters of
``multipart/related`` and ``application/dicom``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PARAMETER = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_SPLIT = re.compile(r',(?=(?:[^"]*"[^"]*")*[^"]*$)')

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
NATIVE_SYNTAXES = frozenset({EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
                             EXPLICIT_VR_BIG_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN})

FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.5": "image/dicom-rle",
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
}
"""The media type of a compressed frame, by transfer syntax (PS3.18 Table 8.7.3-5)."""

ALIASES = {"image/x-dicom-rle": "image/dicom-rle", "image/x-jls": "image/jls"}


@dataclass(frozen=True)
class MediaType:
    """A media type or range with its parameters (names lower-cased, values unquoted).

    Attributes:
        type: ``type/subtype``, lower case (``*/*`` and ``type/*`` are ranges).
        params: the parameters, ``q`` included for an Accept entry.
    """

    type: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> MediaType:
        """One media type with its parameters; a bare ``*`` is ``*/*``."""
        head, _, rest = text.partition(";")
        kind = head.strip().lower() or "*/*"
        kind = "*/*" if kind == "*" else ALIASES.get(kind, kind)
        params: dict[str, str] = {}
        for name, value in _PARAMETER.findall(";" + rest):
            value = value.strip()
            if value.startswith('"') and value.endswith('"') and len(value) >= 2:
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[name.lower()] = value
        return cls(kind, params)

    @property
    def quality(self) -> float:
        """The ``q`` weight (1 when absent or malformed)."""
        try:
            return max(0.0, min(1.0, float(self.params.get("q", "1"))))
        except ValueError:
            return 1.0

    @property
    def inner(self) -> MediaType:
        """For ``multipart/related``, the ``type`` parameter as a media type (with this
        range's ``transfer-syntax``); any other type, itself."""
        if self.type != "multipart/related":
            return self
        inner = MediaType.parse(self.params.get("type", "*/*"))
        if "transfer-syntax" in self.params and "transfer-syntax" not in inner.params:
            inner = MediaType(inner.type, {**inner.params, "transfer-syntax": self.params["transfer-syntax"]})
        return inner

    def covers(self, media_type: str) -> bool:
        """Whether this range includes ``media_type`` (``*/*``, ``image/*``, exact)."""
        if self.type in ("*/*", media_type):
            return True
        major, _, minor = self.type.partition("/")
        return minor in ("*", "") and media_type.startswith(major + "/")


def parse_accept(value: str | None) -> list[MediaType]:
    """The ranges of an Accept header, best first (q weight, then order); ``*/*`` when
    there is no header. Ranges with ``q=0`` are left out."""
    if not value or not value.strip():
        return [MediaType("*/*")]
    ranges = [MediaType.parse(item) for item in _SPLIT.split(value) if item.strip()]
    ranked = sorted(enumerate(ranges), key=lambda pair: (-pair[1].quality, pair[0]))
    return [media for _, media in ranked if media.quality > 0]
