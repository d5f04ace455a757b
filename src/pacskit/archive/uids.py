"""Unique identifiers as PS3.5 9.1 defines them, and what of a UI value is padding.

A UID is numeric components separated by periods: each component one or more digits,
without a leading zero unless it is the single digit ``0``, no empty component, at most
64 characters in all (PS3.5 9.1). A UI value is padded to an even length with one
trailing NUL (PS3.5 6.2); trailing spaces and further NULs, which some senders write,
are taken as padding too. Nothing else is: a leading space, a control character or any
other byte makes the value invalid. The archive indexes an instance, and names its
file, only by the canonical UID — the value without its padding — so two spellings of
one UID are one instance, and no string that is not a UID can pass for one.
"""

from __future__ import annotations

import re

MAX_LENGTH = 64
_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


def canonical_uid(value: str) -> str | None:
    """``value`` without its trailing NUL/space padding if what remains is a valid UID
    (PS3.5 9.1), else None."""
    uid = value.rstrip("\0 ")
    if len(uid) <= MAX_LENGTH and _UID.fullmatch(uid):
        return uid
    return None
