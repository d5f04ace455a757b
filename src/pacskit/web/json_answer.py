"""A QIDO-RS answer (a DICOM JSON array, PS3.18 F.2) read within bounds: its size, and
how deep its JSON nests, so that a hostile server can cost neither unbounded memory nor a
RecursionError.

The body is decoded one array item at a time (``json.JSONDecoder.raw_decode``) and each
item becomes a :class:`~pydicom.Dataset` before the next is read: the parsed JSON of the
whole answer is never held. An item may nest as deep as a dataset of
:data:`pacskit.encoded.MAX_NESTING` nested sequences (three JSON levels each: the tag's
object, its ``Value`` array, the item's object), not deeper.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydicom import Dataset

from pacskit.encoded import MAX_NESTING

MAX_JSON_DEPTH = 3 * MAX_NESTING + 4
_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


class AnswerError(ValueError):
    """The answer is not a DICOM JSON array within the bounds."""


def datasets(body: bytes | bytearray, max_depth: int = MAX_JSON_DEPTH) -> Iterator[Dataset]:
    """The datasets of a DICOM JSON array, one at a time; bulk data URIs are not fetched.

    Raises:
        AnswerError: not UTF-8 JSON, not an array of objects, an item nested deeper than
            ``max_depth`` JSON levels, or an item pydicom cannot read.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AnswerError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    del body
    at = _skip(text, 0)
    if text[at:at + 1] != "[":
        raise AnswerError("not a JSON array")
    at = _skip(text, at + 1)
    if text[at:at + 1] == "]":
        _end(text, at + 1)
        return
    while True:
        item, at = _item(text, at, max_depth)
        try:
            yield Dataset.from_json(item, bulk_data_uri_handler=lambda *_: b"")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AnswerError(str(exc)[:120]) from None
        del item
        at = _skip(text, at)
        following = text[at:at + 1]
        if following == "]":
            _end(text, at + 1)
            return
        if following != ",":
            raise AnswerError(f"expected ',' or ']' at character {at}")
        at = _skip(text, at + 1)


def _item(text: str, at: int, max_depth: int) -> tuple[dict[str, Any], int]:
    try:
        item, end = _DECODER.raw_decode(text, at)
    except RecursionError:
        raise AnswerError(f"JSON nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise AnswerError(f"{exc.msg} at character {exc.pos}") from None
    if not isinstance(item, dict):
        raise AnswerError(f"an item that is not a JSON object at character {at}")
    if _depth(item, max_depth) > max_depth:
        raise AnswerError(f"JSON nested deeper than {max_depth} levels")
    return item, end


def _depth(value: Any, limit: int) -> int:
    """How many JSON containers nest in ``value`` (counting stops past ``limit``), walked
    without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            break
        children = current.values() if isinstance(current, dict) else current
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _SPACE:
        at += 1
    return at


def _end(text: str, at: int) -> None:
    if _skip(text, at) != len(text):
        raise AnswerError(f"more after the array, at character {at}")
