"""What a STOW-RS answer says about each file sent (PS3.18 10.5.3), and a readable
one-line reason from any other answer a server gives to a failed request.

The DIMSE modules are imported when a response is tallied, not with this module: a
DICOMweb command starts without pynetdicom.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydicom import Dataset

from pacskit.scan import DicomFile

if TYPE_CHECKING:
    from pacskit.net.store import SendOutcome

FAILURE_REASON = 0x00081197
WARNING_REASON = 0x00081196
FAILED_SOP_SEQUENCE = 0x00081198
REFERENCED_SOP_SEQUENCE = 0x00081199
REFERENCED_SOP_INSTANCE_UID = 0x00081155
ERROR_COMMENT = 0x00000902
PROCESSING_FAILURE = 0x0110
WARNING = 0xB000
STORE_RESPONSE_KEYS = ("00081198", "00081199", "00081190")
REASON_LENGTH = 200
JSON_MESSAGE_KEYS = ("Message", "Details", "message", "detail", "error", "error_description", "title")
MARKUP_SCANNED = 16 << 10
"""Bytes of a non-JSON error body looked at for its reason (the reason is near the
start; the bound keeps the markup regexes linear in practice)."""


def store_response(body: bytes) -> Dataset | None:
    """The Store Instances Response in ``body`` (DICOM JSON, PS3.18 F.2), or None when
    the body is something else — whatever the HTTP status it came with: a server may
    list what it stored in the body of a 400 (Orthanc does)."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict) or not any(key in data for key in STORE_RESPONSE_KEYS):
            return None
        return Dataset.from_json(data, bulk_data_uri_handler=lambda *_: b"")
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def tally_stow(batch: list[DicomFile], answer: Dataset, tally: Callable[[SendOutcome], Any],
               http: str | None = None) -> None:
    """Each file's outcome from a Store Instances Response (PS3.18 Table 10.5.3-1): a
    Failed SOP Sequence item with its Failure Reason and Error Comment, a Referenced SOP
    Sequence item (with its Warning Reason, if any), or — a file the response does not
    name — a failure, whose reason gives the HTTP status ``http`` when it was an error.
    Failed items that name no instance are matched in order to the files named nowhere,
    when there are as many of each."""
    from pacskit.net.status import Outcome, describe_store, outcome_of
    from pacskit.net.store import SendOutcome

    outcomes: dict[str, tuple[int | None, str]] = {}
    for item in _items(answer, REFERENCED_SOP_SEQUENCE):
        warning = _int_of(item, WARNING_REASON)
        outcomes[_text_of(item, REFERENCED_SOP_INSTANCE_UID)] = (
            (WARNING, f"stored with a warning: {describe_store(warning)}{_comment(item)}") if warning else (0, ""))
    unnamed: list[tuple[int | None, str]] = []
    for item in _items(answer, FAILED_SOP_SEQUENCE):
        code = _int_of(item, FAILURE_REASON) or PROCESSING_FAILURE
        if outcome_of(code) is not Outcome.FAILURE:
            code = PROCESSING_FAILURE
        failure = (code, f"refused: {describe_store(code)}{_comment(item)}")
        uid = _text_of(item, REFERENCED_SOP_INSTANCE_UID)
        if uid:
            outcomes[uid] = failure
        else:
            unnamed.append(failure)
    missing = [f for f in batch if f.sop_instance_uid not in outcomes]
    if unnamed and len(unnamed) == len(missing):
        outcomes.update((f.sop_instance_uid, failure) for f, failure in zip(missing, unnamed, strict=True))
    absent = "not in the server's STOW-RS response" + (f" ({http})" if http else "")
    for file in batch:
        status, reason = outcomes.get(file.sop_instance_uid, (None, absent))
        tally(SendOutcome(file, status, reason))


def error_reason(body: bytes, content_type: str = "") -> str:
    """One readable line from the body of an HTTP error: the message of a JSON error
    (Orthanc's ``Message`` and ``Details``, or the usual ``message``/``error``/``detail``
    keys), the Error Comment of DICOM JSON, the text of XML or HTML, or the first text
    of a plain body; "" if there is none. Markup is stripped, never parsed (no entity
    expansion from a hostile server)."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if data is not None:
        return _shorten(_json_reason(data))
    text = text[:MARKUP_SCANNED]
    if text.startswith("<") or "xml" in content_type or "html" in content_type:
        return _shorten(_markup_text(text))
    return _shorten(text)


def _json_reason(data: object, depth: int = 0) -> str:
    if isinstance(data, dict) and depth < 3:
        comment = data.get("00000902")
        if isinstance(comment, dict) and comment.get("Value"):
            return " ".join(str(v) for v in comment["Value"])
        found = [str(data[k]).strip() for k in JSON_MESSAGE_KEYS
                 if isinstance(data.get(k), str | int | float) and str(data[k]).strip()]
        if found:
            return ": ".join(dict.fromkeys(found[:2]))
        nested = data.get("error")
        if isinstance(nested, dict):
            return _json_reason(nested, depth + 1)
        if "errors" in data and isinstance(data["errors"], list) and data["errors"]:
            return _json_reason(data["errors"][0], depth + 1)
    if isinstance(data, str):
        return data
    return json.dumps(data, separators=(",", ":"))


def _markup_text(text: str) -> str:
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    text = re.sub(r"<(head|script|style)\b.*?</\1\s*>", " ", text, flags=re.IGNORECASE | re.DOTALL)
    text = re.sub(r"<!--.*?-->|<!\[CDATA\[|\]\]>|<[^>]*>", " ", text, flags=re.DOTALL)
    words = " ".join(html.unescape(text).split())
    return words or (" ".join(html.unescape(title.group(1)).split()) if title else "")


def _shorten(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= REASON_LENGTH else line[:REASON_LENGTH - 1] + "…"


def _comment(item: Dataset) -> str:
    comment = _text_of(item, ERROR_COMMENT)
    return f": {_shorten(comment)}" if comment else ""


def _int_of(item: Dataset, tag: int) -> int:
    element = item.get(tag) if isinstance(item, Dataset) else None
    try:
        return int(element.value) if element is not None and element.value is not None else 0
    except (TypeError, ValueError):
        return 0


def _text_of(item: Dataset, tag: int) -> str:
    element = item.get(tag) if isinstance(item, Dataset) else None
    return str(element.value).strip() if element is not None and element.value is not None else ""


def _items(answer: Dataset, tag: int) -> list[Dataset]:
    element = answer.get(tag)
    return [item for item in element.value if isinstance(item, Dataset)] \
        if element is not None and element.value else []
