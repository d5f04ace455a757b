"""WADO-RS, Retrieve Transaction (PS3.18 10.4): instances, metadata, frames and rendered
images of what the archive stores.

Which transfer syntax an instance is sent in follows PS3.18 8.7.3: the ``transfer-syntax``
parameter of the accepted media type, and without one the default of ``application/dicom``,
Explicit VR Little Endian (Table 8.7.3-2). ``transfer-syntax=*`` sends every instance as it
was stored (PS3.10 files, as received), read from disk a chunk at a time: a study is never
held in memory. So is an instance already stored in the syntax asked for. Any other is
rewritten in Explicit VR Little Endian — decoded first when it is compressed, one
instance at a time — the only syntax pacskit converts to; a syntax it cannot produce is
406. Every part's Content-Type names the syntax of its instance.

An instance that cannot be converted is left out: the response is 406 when none can be
sent, and 206 (Partial Content) with a Warning header saying how many were left out when
some can (the Retrieve Transaction's response, PS3.18 10.4.3; PS3.18-2019a 6.5.2.2 puts
it as "a Not Acceptable response if no data is returned or a Partial Content response if
only some data is returned"). Whether an instance can be decoded is known from its transfer syntax before
the response starts; a decoder that fails on an instance's data is found only once the
response is under way, and that instance is then left out with a warning in the log.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import Dataset, dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.encaps import get_frame
from pydicom.filewriter import dcmwrite
from pydicom.pixels.utils import pixel_array  # pydicom.pixels re-exports it implicitly
from pydicom.tag import BaseTag
from pydicom.uid import UID
from starlette.exceptions import HTTPException

from pacskit.archive.index import StoredInstance
from pacskit.query import Level, Query
from pacskit.web import pixel_budget
from pacskit.web.media import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    FRAME_MEDIA_TYPES,
    NATIVE_SYNTAXES,
    MediaType,
)
from pacskit.web.multipart import file_chunks
from pacskit.web.stored import StoredFiles

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_FRAMES = re.compile(r"^[0-9]+(,[0-9]+)*$")
DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"
BULK_DATA_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
BULK_DATA_THRESHOLD = 1024
_WORD_SIZES = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
LOG = logging.getLogger("pacskit.web")


@dataclass(frozen=True)
class Located:
    """A stored instance and its file, checked to lie inside the archive's folder."""

    instance: StoredInstance
    path: Path


@dataclass(frozen=True)
class Representation:
    """How instances are sent: in a multipart message or alone, and in which transfer
    syntax (None: as stored)."""

    multipart: bool
    transfer_syntax: str | None

    def can_send(self, stored: str) -> bool:
        """Whether an instance stored in ``stored`` can be sent this way."""
        return self.transfer_syntax is None or convertible(stored, self.transfer_syntax)


def check_uid(uid: str) -> str:
    """``uid`` if it is a UID (PS3.5 9.1).

    Raises:
        HTTPException: 400, it is not.
    """
    if len(uid) > 64 or not _UID.match(uid):
        raise HTTPException(400, f"{uid[:80]!r} is not a UID")
    return uid


def locate(index: object, files: Path, study: str, series: str | None = None,
           sop: str | None = None) -> list[Located]:
    """The stored instances of a study, series or instance.

    Raises:
        HTTPException: 400, a malformed UID; 404, nothing is stored there.
    """
    match = {"StudyInstanceUID": check_uid(study)}
    level = Level.STUDY
    if series is not None:
        match["SeriesInstanceUID"], level = check_uid(series), Level.SERIES
    if sop is not None:
        match["SOPInstanceUID"], level = check_uid(sop), Level.IMAGE
    stored = list(index.instances(Query(level=level, match=match)))  # type: ignore[attr-defined]
    if not stored:
        raise HTTPException(404, f"no such {level.value.lower()}: {(sop or series or study)}")
    root = files.resolve()
    return [Located(item, safe_path(root, item.path)) for item in stored]


def safe_path(root: Path, relative: str) -> Path:
    """The file at ``relative`` under the resolved folder ``root``, never outside it. The
    path is normalised, not resolved: the archive writes no symbolic links, and resolving
    each of a study's files costs more than sending it.

    Raises:
        HTTPException: 404, the path leads out of the folder or the file is gone.
    """
    path = os.path.normpath(os.path.join(root, relative))
    if not path.startswith(f"{root}{os.sep}") or not os.path.isfile(path):
        raise HTTPException(404, "the stored file is missing")
    return Path(path)


def choose_representation(accept: list[MediaType], stored: Iterable[str], *,
                          single: bool) -> Representation:
    """The best way to send instances stored in the ``stored`` syntaxes (PS3.18 8.7.3.5):
    ``multipart/related; type="application/dicom"``, or ``application/dicom`` alone for a
    ``single`` instance, in the ``transfer-syntax`` the media type names — Explicit VR
    Little Endian when it names none (Table 8.7.3-2), as stored for ``*``. The first
    acceptable media type that can carry every instance wins; failing that, the first
    that can carry some of them in a multipart response (the others are left out).

    Raises:
        HTTPException: 406, nothing in the Accept header can be served.
    """
    syntaxes = set(stored)
    partial: Representation | None = None
    for media in accept:
        if media.type == DICOM and single:
            inner, multipart = media, False
        elif media.type in ("multipart/related", "multipart/*", "*/*"):
            inner = media.inner if media.type == "multipart/related" else MediaType(DICOM, media.params)
            multipart = True
            if not inner.covers(DICOM):
                continue
        else:
            continue
        wanted = inner.params.get("transfer-syntax") or EXPLICIT_VR_LITTLE_ENDIAN
        representation = Representation(multipart, None if wanted == "*" else wanted)
        sendable = [s for s in syntaxes if representation.can_send(s)]
        if len(sendable) == len(syntaxes):
            return representation
        if sendable and multipart and not single and partial is None:
            partial = representation
    if partial is not None:
        return partial
    raise HTTPException(406, f"cannot send {', '.join(sorted(syntaxes))} as any of the accepted media types "
                             f'(try multipart/related; type="{DICOM}"; transfer-syntax=*)')


def convertible(stored: str, wanted: str) -> bool:
    """Whether an instance stored in ``stored`` can be sent in ``wanted``: as it is, or
    rewritten in Explicit VR Little Endian."""
    return stored == wanted or (wanted == EXPLICIT_VR_LITTLE_ENDIAN and decodable(stored))


@cache
def decodable(transfer_syntax: str) -> bool:
    """Whether an instance in ``transfer_syntax`` can be rewritten in Explicit VR Little
    Endian (a decoder for it is installed; asked once per syntax)."""
    if transfer_syntax in NATIVE_SYNTAXES:
        return True
    try:
        from pydicom.pixels.decoders.base import get_decoder
        return bool(get_decoder(UID(transfer_syntax)).is_available)
    except (NotImplementedError, ValueError, KeyError):
        return False


def instance_parts(located: list[Located], transfer_syntax: str | None, budget: int, stored_files: StoredFiles
                   ) -> Iterator[tuple[str, Iterable[bytes]]]:
    """(Content-Type, chunks) of each instance in ``transfer_syntax`` (None: as stored),
    read only as the response is sent; a deflated one asked for in Explicit VR Little
    Endian is inflated into ``stored_files``' scratch folder, not in memory. Call it with
    the instances that can be sent that way (:meth:`Representation.can_send`).

    Raises:
        HTTPException: 406, a single instance cannot be decoded; 413, decoding it would
            go over the pixel ``budget``. Of several, one that cannot be decoded or is
            over the budget is left out, with a warning in the log.
    """
    for item in located:
        stored = item.instance.transfer_syntax
        if transfer_syntax is None or transfer_syntax == stored:
            yield f"{DICOM}; transfer-syntax={stored}", file_chunks(item.path)
            continue
        if stored == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN and transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN:
            yield f"{DICOM}; transfer-syntax={transfer_syntax}", stored_files.inflated_chunks(item.path)
            continue
        try:
            data = transcoded(item.path, transfer_syntax, budget)
        except HTTPException as exc:
            if len(located) == 1:
                raise
            LOG.warning("WADO-RS: instance %s left out of the response: %s", item.instance.sop_instance_uid, exc.detail)
            continue
        yield f"{DICOM}; transfer-syntax={transfer_syntax}", [data]


def transcoded(path: Path, transfer_syntax: str, budget: int) -> bytes:
    """The instance at ``path`` as a PS3.10 file in ``transfer_syntax`` (decoded first
    when it is compressed, if its frames fit in the pixel ``budget``).

    Raises:
        HTTPException: 406, the instance cannot be decoded; 413, its frames declare more
            decoded bytes than ``budget``.
    """
    try:
        ds = dcmread(path)
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            pixel_budget.check(ds, number_of_frames(ds), budget)
            ds.decompress(generate_instance_uid=False)
        ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
        buffer = BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the instance's
        raise HTTPException(406, f"the instance cannot be sent in {transfer_syntax}: {exc}") from None
    return buffer.getvalue()


def metadata(ds: Dataset, base_url: str, transfer_syntax: str) -> dict[str, Any]:
    """The DICOM JSON (PS3.18 F.2) of the stored instance ``ds`` (opened by
    :func:`pacskit.web.stored.opened`), bulk data as BulkDataURIs (PS3.18 10.4.1.1.3):
    Pixel Data to the frames of the instance, any other top-level binary value over
    :data:`BULK_DATA_THRESHOLD` bytes to its bulk data resource, never read."""
    instance_url = (f"{base_url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                    f"/instances/{ds.SOPInstanceUID}")
    bulk = {tag: _vr(ds, tag).split(" or ")[-1] for tag in list(ds.keys()) if _is_bulk(ds, tag)}
    for tag in bulk:
        del ds[tag]
    document = ds.to_json_dict(bulk_data_threshold=1 << 30, suppress_invalid_tags=True)
    for tag, vr in bulk.items():
        key = f"{tag:08X}"
        document[key] = {"vr": vr, "BulkDataURI": f"{instance_url}/bulk/{key}"}
    if "Rows" in ds and "Columns" in ds:
        frames = int(ds.get("NumberOfFrames") or 1)
        url = f"{instance_url}/frames/{','.join(map(str, range(1, frames + 1)))}"
        compressed = UID(transfer_syntax).is_compressed
        vr = "OB" if compressed or int(ds.get("BitsAllocated") or 8) <= 8 else "OW"
        document["7FE00010"] = {"vr": vr, "BulkDataURI": url}
    return dict(sorted(document.items()))


def _is_bulk(ds: Dataset, tag: BaseTag) -> bool:
    """Whether ``tag`` is a binary value over the threshold, found without reading a
    deferred value."""
    if not BULK_DATA_VRS.intersection(_vr(ds, tag).split(" or ")):
        return False
    element = ds.get_item(tag, keep_deferred=True)
    size = element.length if element.value is None and isinstance(element, RawDataElement) else len(element.value or b"")
    return size > BULK_DATA_THRESHOLD


def _vr(ds: Dataset, tag: BaseTag) -> str:
    """The VR of ``tag``: as stored, else (implicit VR) the dictionary's, e.g. ``OB or OW``."""
    raw = ds.get_item(tag, keep_deferred=True)
    if isinstance(raw, RawDataElement):
        if raw.VR:
            return str(raw.VR)
        try:
            return dictionary_VR(tag)
        except KeyError:
            return "UN"
    return str(raw.VR)


def bulk_data(ds: Dataset, transfer_syntax: str, key: str) -> bytes:
    """The value of the top-level binary attribute ``key`` (eight hex digits) of the
    stored instance ``ds``, in Little Endian byte order (PS3.18 8.7.3.5.1).

    Raises:
        HTTPException: 404, no such attribute, or not a binary one; 400, a bad tag.
    """
    tag = bulk_tag(key)
    if tag not in ds or ds[tag].VR not in BULK_DATA_VRS or ds[tag].is_empty:
        raise HTTPException(404, f"the instance has no bulk data at ({key[:4]},{key[4:]})")
    value = ds[tag].value
    value = value if isinstance(value, bytes) else bytes(value)
    width = _WORD_SIZES.get(ds[tag].VR, 1)
    if transfer_syntax == EXPLICIT_VR_BIG_ENDIAN and width > 1 and len(value) % width == 0:
        value = np.frombuffer(value, dtype=f">u{width}").astype(f"<u{width}").tobytes()
    return value


def bulk_tag(key: str) -> int:
    """The tag of a bulk data resource's ``key``.

    Raises:
        HTTPException: 400, not a tag; 404, Pixel Data (retrieved as frames).
    """
    if not re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        raise HTTPException(400, f"{key[:20]!r} is not a tag (eight hexadecimal digits)")
    tag = int(key, 16)
    if tag == 0x7FE00010:
        raise HTTPException(404, "Pixel Data is retrieved as frames")
    return tag


def frame_numbers(text: str) -> list[int]:
    """``1,3,5`` as frame numbers (PS3.18 10.4.1.1.4).

    Raises:
        HTTPException: 400, not a list of positive integers.
    """
    if not _FRAMES.match(text) or any(int(n) < 1 for n in text.split(",")):
        raise HTTPException(400, f"{text[:80]!r} is not a comma-separated list of frame numbers")
    return [int(n) for n in text.split(",")]


def check_image(ds: Dataset) -> Dataset:
    """``ds``, checked to be an image.

    Raises:
        HTTPException: 400, the instance has no pixel data.
    """
    if "PixelData" not in ds or "Rows" not in ds:
        raise HTTPException(400, "the instance has no pixel data (it is not an image)")
    return ds


def number_of_frames(ds: Dataset) -> int:
    """NumberOfFrames, 1 when absent."""
    return int(ds.get("NumberOfFrames") or 1)


def check_frames(ds: Dataset, numbers: list[int]) -> None:
    """Raises:
        HTTPException: 404, a frame number past the last frame.
    """
    last = number_of_frames(ds)
    beyond = [n for n in numbers if n > last]
    if beyond:
        raise HTTPException(404, f"frame {beyond[0]} does not exist: the instance has {last}")


def choose_frame_type(accept: list[MediaType], transfer_syntax: str) -> tuple[str, bool]:
    """The media type to send frames in and whether they must be decoded first
    (PS3.18 8.7.3.3.2): a compressed frame as it is stored (``image/jpeg`` and the
    like, or ``application/octet-stream`` with ``transfer-syntax`` of the stored
    syntax), decoded to ``application/octet-stream`` when only that is accepted;
    an uncompressed frame as ``application/octet-stream``.

    Raises:
        HTTPException: 406, nothing in the Accept header can be served.
    """
    native = FRAME_MEDIA_TYPES.get(transfer_syntax) if UID(transfer_syntax).is_compressed else None
    for media in accept:
        inner = media.inner if media.type == "multipart/related" else media
        wanted = inner.params.get("transfer-syntax", "*") or "*"
        if native is not None:
            if inner.type != "*/*" and inner.covers(native) and wanted in ("*", transfer_syntax):
                return native, False
            if inner.covers(OCTET_STREAM) and wanted in ("*", transfer_syntax):
                return (native if inner.type == "*/*" else OCTET_STREAM), False
            if inner.covers(OCTET_STREAM) and wanted == EXPLICIT_VR_LITTLE_ENDIAN and decodable(transfer_syntax):
                return OCTET_STREAM, True
        elif inner.covers(OCTET_STREAM) and wanted in ("*", EXPLICIT_VR_LITTLE_ENDIAN):
            return OCTET_STREAM, False
    raise HTTPException(406, "none of the accepted media types can carry these frames")


def frame_bytes(ds: Dataset, number: int, decode: bool) -> bytes:
    """Frame ``number`` (from 1) of ``ds``: as stored for a compressed instance (unless
    ``decode``), else as little-endian native pixel data."""
    transfer_syntax = ds.file_meta.TransferSyntaxUID
    frames = number_of_frames(ds)
    if transfer_syntax.is_compressed:
        if not decode:
            return get_frame(ds.PixelData, number - 1, number_of_frames=frames)
        try:
            frame = pixel_array(ds, index=number - 1, raw=True)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the instance's
            raise HTTPException(406, f"frame {number} cannot be decoded: {exc}") from None
        return np.ascontiguousarray(frame).astype(np.dtype(_dtype(ds)).newbyteorder("<"), copy=False).tobytes()
    bits = int(ds.BitsAllocated)
    size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel") or 1) * bits
    if size % 8:
        raise HTTPException(406, "frames of 1-bit pixel data that are not byte-aligned cannot be sent")
    size //= 8
    data: bytes = ds.PixelData[(number - 1) * size:number * size]
    if transfer_syntax == EXPLICIT_VR_BIG_ENDIAN and bits > 8:
        data = np.frombuffer(data, dtype=f">u{bits // 8}").astype(f"<u{bits // 8}").tobytes()
    return data


def _dtype(ds: Dataset) -> str:
    bits = int(ds.BitsAllocated)
    width = 1 if bits <= 8 else 2 if bits <= 16 else 4
    return f"{'i' if int(ds.get('PixelRepresentation') or 0) else 'u'}{width}"
