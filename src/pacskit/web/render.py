"""Rendered images (PS3.18 8.3.5, 10.4.1.1.5): one frame as an 8-bit JPEG or PNG.

Grayscale frames go through pydicom's Modality LUT (:func:`~pydicom.pixels.apply_modality_lut`:
Modality LUT Sequence or rescale), then its VOI LUT (:func:`~pydicom.pixels.apply_voi_lut`,
PS3.3 C.11.2): the window asked for (``window=center,width,linear``), else the instance's
VOI LUT Sequence, else its first Window Center/Width with its VOI LUT Function (LINEAR,
LINEAR_EXACT, SIGMOID), else the frame's minimum and maximum; the output range of the
VOI stage (PS3.3 C.11.2.1.2) is then scaled to 8 bits. MONOCHROME1 is inverted. Colour
frames are converted to RGB by pydicom (YBR, palette) and scaled to 8 bits.

A thumbnail (PS3.18 10.4.1.1.6) is the rendered frame reduced to fit a viewport.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np
from PIL import Image
from pydicom import Dataset

# pydicom.pixels re-exports these implicitly (no __all__), so they come from where they are defined
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import pixel_array
from starlette.exceptions import HTTPException

from pacskit.web.media import MediaType

RENDERED_TYPES = ("image/jpeg", "image/png")


def choose_rendered_type(accept: list[MediaType], asked: str | None = None) -> str:
    """``image/jpeg`` or ``image/png``: the ``accept`` query parameter's, else the
    Accept header's first acceptable one (JPEG for ``*/*``, PS3.18 8.3.5.1).

    Raises:
        HTTPException: 406, neither is acceptable.
    """
    ranges = [MediaType.parse(asked)] if asked else accept
    for media in ranges:
        for candidate in RENDERED_TYPES:
            if media.covers(candidate):
                return candidate
    raise HTTPException(406, "rendered images are image/jpeg or image/png")


def parse_window(text: str | None) -> tuple[float, float] | None:
    """The ``window`` parameter, ``center,width[,function]`` (PS3.18 8.3.5.1.3).

    Raises:
        HTTPException: 400, it is malformed, or the function is not ``linear``.
    """
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        center, width = float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        raise HTTPException(400, f"window must be center,width[,function], not {text[:80]!r}") from None
    if len(parts) > 2 and parts[2].lower() != "linear":
        raise HTTPException(400, f"only the linear VOI LUT function is supported, not {parts[2]!r}")
    if width <= 0:
        raise HTTPException(400, "the window width must be positive")
    return center, width


THUMBNAIL_SIZE = (128, 128)


def parse_viewport(text: str | None, default: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """The ``viewport`` parameter, ``vw,vh`` (PS3.18 8.3.5.1.2), in pixels.

    Raises:
        HTTPException: 400, it is malformed or outside 1 to 4096.
    """
    if not text:
        return default
    parts = text.split(",")
    if len(parts) < 2 or not all(p.strip().isdigit() and 1 <= int(p) <= 4096 for p in parts[:2]):
        raise HTTPException(400, f"viewport must be width,height (1 to 4096), not {text[:40]!r}")
    return int(parts[0]), int(parts[1])


def render(ds: Dataset, frame: int, media_type: str, *, window: tuple[float, float] | None = None,
           quality: int = 90, viewport: tuple[int, int] | None = None) -> bytes:
    """Frame ``frame`` (from 1) of ``ds`` as ``media_type``, reduced to fit ``viewport``
    (width, height) if given.

    Raises:
        HTTPException: 400, the pixel data cannot be decoded.
    """
    try:
        array = pixel_array(ds, index=frame - 1)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the instance's
        raise HTTPException(400, f"the pixel data cannot be decoded: {exc}") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        image = _to_8_bits(apply_color_lut(array, ds), None)
    elif array.ndim == 3:
        image = _to_8_bits(array, (0, float(2 ** int(ds.get("BitsStored") or 8) - 1)))
    else:
        image = _grayscale(ds, array, window)
        if photometric == "MONOCHROME1":
            image = 255 - image
    picture = Image.fromarray(image)
    if viewport is not None:
        picture.thumbnail(viewport)
    buffer = BytesIO()
    if media_type == "image/png":
        picture.save(buffer, format="PNG")
    else:
        picture.save(buffer, format="JPEG", quality=max(1, min(quality, 100)))
    return buffer.getvalue()


def _grayscale(ds: Dataset, array: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    values = apply_modality_lut(array, ds)
    view = _voi_view(ds, window)
    if view is None:
        return _to_8_bits(values, None)
    try:
        out = apply_voi_lut(values, view, index=0, prefer_lut=window is None)
    except (ValueError, NotImplementedError, AttributeError, KeyError, IndexError, TypeError):
        return _to_8_bits(values, None)
    return _to_8_bits(out, _voi_range(view, window is None and "VOILUTSequence" in view))


def _voi_view(ds: Dataset, window: tuple[float, float] | None) -> Dataset | None:
    """The attributes pydicom's VOI stage reads: the instance's own, or, for an asked
    ``window``, the instance's with that window and the LINEAR function instead."""
    if window is None:
        has_window = "WindowCenter" in ds and "WindowWidth" in ds and _first(ds.WindowWidth) > 0
        return ds if "VOILUTSequence" in ds or has_window else None
    view = Dataset()
    for keyword in ("PhotometricInterpretation", "BitsStored", "BitsAllocated", "PixelRepresentation",
                    "RescaleSlope", "RescaleIntercept", "ModalityLUTSequence"):
        if keyword in ds:
            setattr(view, keyword, ds[keyword].value)
    view.WindowCenter, view.WindowWidth = window
    view.VOILUTFunction = "LINEAR"
    return view


def _voi_range(ds: Dataset, lut: bool) -> tuple[float, float]:
    """The output range of the VOI stage: the VOI LUT's entries (PS3.3 C.11.2.1.1), or the
    range pydicom's windowing maps onto (that of the stored values after the Modality LUT)."""
    if lut:
        return 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
    if ds.get("ModalityLUTSequence"):
        low, high = 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    elif int(ds.get("PixelRepresentation") or 0) == 0:
        low, high = 0.0, float(2 ** bits - 1)
    else:
        low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        low, high = low * float(slope) + float(intercept), high * float(slope) + float(intercept)
    return (low, high) if low <= high else (high, low)


def _first(value: Any) -> float:
    # ``value`` is a pydicom element value (typed Any there): a number or a MultiValue
    return float(value[0] if hasattr(value, "__getitem__") else value)


def _to_8_bits(values: np.ndarray, bounds: tuple[float, float] | None) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = bounds if bounds is not None else (float(values.min()), float(values.max()))
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return (np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
