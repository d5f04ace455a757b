"""The pixel budget: how many bytes of decoded pixel data one request may make the server
decode (``web.pixel_budget``), checked against what the instance declares (PS3.3 C.7.6.3:
Rows × Columns × Samples per Pixel × Bits Allocated, per frame) before any decoding, so
that a small compressed instance declaring a huge image (a decompression bomb) is refused
for the cost of reading its header."""

from __future__ import annotations

from pydicom import Dataset
from starlette.exceptions import HTTPException

STATUS = 413


def decoded_size(ds: Dataset, frames: int = 1) -> int:
    """The bytes ``frames`` frames of ``ds`` take once decoded, as declared."""
    bits = int(ds.get("Rows") or 0) * int(ds.get("Columns") or 0) * int(ds.get("SamplesPerPixel") or 1) \
        * int(ds.get("BitsAllocated") or 8)
    return (bits + 7) // 8 * frames


def check(ds: Dataset, frames: int, budget: int) -> None:
    """Raises:
        HTTPException: 413, decoding ``frames`` frames of ``ds`` would make more than
            ``budget`` bytes.
    """
    size = decoded_size(ds, frames)
    if size > budget:
        raise HTTPException(STATUS, f"decoding would make {size} bytes of pixel data ({frames} frame(s) of "
                                    f"{int(ds.get('Rows') or 0)} x {int(ds.get('Columns') or 0)}), over the "
                                    f"pixel budget of {budget} bytes (web.pixel_budget)")
