"""Keyed pseudonyms: the same input and secret give the same output on every run and
machine (HMAC-SHA256, RFC 2104), and nothing short of the secret links them back."""

from __future__ import annotations

import hashlib
import hmac

UUID_ROOT = "2.25."
DAY_OFFSET_RANGE = 3650
"""Dates move back by 1 to this many days."""


class Pseudonyms:
    """Pseudonyms under one secret, each kind in its own domain (a UID and a Patient ID
    with the same text get unrelated pseudonyms)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._uids: dict[str, str] = {}

    def _digest(self, domain: bytes, value: str) -> bytes:
        return hmac.new(self._secret, domain + b"\0" + value.encode("utf-8"), hashlib.sha256).digest()

    def uid(self, uid: str) -> str:
        """A UID under ``2.25`` (PS3.5 B.2) from the first 128 bits of the HMAC."""
        found = self._uids.get(uid)
        if found is None:
            if len(self._uids) > 1 << 16:
                self._uids.clear()
            found = self._uids[uid] = UUID_ROOT + str(int.from_bytes(self._digest(b"uid", uid)[:16], "big"))
        return found

    def patient_id(self, patient_id: str) -> str:
        """A Patient ID (LO) of 20 upper-case hexadecimal digits."""
        return self._digest(b"patient-id", patient_id).hex()[:20].upper()

    def text(self, kind: str, value: str, length: int) -> str:
        """An upper-case hexadecimal pseudonym of ``length`` characters for a value of
        ``kind`` (an AE title, for example)."""
        return self._digest(kind.encode(), value).hex()[:length].upper()

    def day_offset(self, patient_id: str) -> int:
        """The number of days (negative) that the dates of this patient move by."""
        digest = self._digest(b"date-offset", patient_id)
        return -(1 + int.from_bytes(digest[:8], "big") % DAY_OFFSET_RANGE)
