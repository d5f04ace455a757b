"""Rendered images (PS3.18 8.3.5, 10.4.1.1.5): one frame as an 8-bit JPEG or PNG.

Grayscale frames go through the Modality LUT (rescale), then a window — the one asked
for (``window=center,width,linear``), else the instance's first Window Center/Width,
else the frame's minimum and maximum — to 8 bits; MONOCHROME1 is inverted. Colour frames
are converted to RGB by pydicom (YBR, palette) and scaled to 8 bits.
"""

from __future__ import annotations

from io import BytesIO

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array
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


def render(ds: Dataset, frame: int, media_type: str, *, window: tuple[float, float] | None = None,
           quality: int = 90) -> bytes:
    """Frame ``frame`` (from 1) of ``ds`` as ``media_type``.

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
        values = apply_modality_lut(array, ds).astype(np.float64)
        image = _to_8_bits(values, _bounds(ds, values, window))
        if photometric == "MONOCHROME1":
            image = 255 - image
    buffer = BytesIO()
    if media_type == "image/png":
        Image.fromarray(image).save(buffer, format="PNG")
    else:
        Image.fromarray(image).save(buffer, format="JPEG", quality=max(1, min(quality, 100)))
    return buffer.getvalue()


def _bounds(ds: Dataset, values: np.ndarray, window: tuple[float, float] | None) -> tuple[float, float] | None:
    if window is None and "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        window = (center, width) if width > 0 else None
    if window is None:
        return None
    center, width = window
    return center - width / 2, center + width / 2


def _first(value: object) -> float:
    return float(value[0] if hasattr(value, "__getitem__") else value)  # type: ignore[index, arg-type]


def _to_8_bits(values: np.ndarray, bounds: tuple[float, float] | None) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = bounds if bounds is not None else (float(values.min()), float(values.max()))
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return (np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
