"""Moving DA and DT values by a whole number of days (PS3.5 6.2): the interval between
any two dates of a patient is kept, and a time of day, its fraction and a DT's UTC
offset stay as they were."""

from __future__ import annotations

import re
from datetime import date, timedelta

_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(.*)", re.DOTALL)


def shift_date(value: str, days: int) -> str | None:
    """A DA value (or a DA range ``A-B``, either end open) moved by ``days``; None when
    it is not a date."""
    text = value.strip()
    if "-" in text:
        parts = text.split("-")
        if len(parts) != 2:
            return None
        moved = [shift_date(p, days) if p else "" for p in parts]
        return None if None in moved else "-".join(moved)  # type: ignore[arg-type]
    text = text.replace(".", "") if len(text) == 10 else text
    if len(text) != 8 or not text.isdigit():
        return None
    return shift_datetime(text, days)


def shift_datetime(value: str, days: int) -> str | None:
    """A DT value moved by ``days``. A DT of a year or a month (``2020``, ``202003``)
    moves its first day and keeps the precision it had. None when it is not a DT."""
    match = _DT.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, rest = match.groups()
    if rest and not (month and day) or rest and not re.fullmatch(r"[\d.]*([+-]\d{4})?", rest):
        return None
    try:
        start = date(int(year), int(month or 1), int(day or 1))
        moved = start + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    text = f"{moved.year:04d}"
    if month:
        text += f"{moved.month:02d}"
    if day:
        text += f"{moved.day:02d}"
    return text + rest
