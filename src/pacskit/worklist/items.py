"""Worklist items as pacskit takes them in: from fields, a DICOM JSON document (PS3.18
F.2), a DICOM file (DCMTK's ``.wl``) or a DCMTK dump (``.dump``, made into a DICOM file
by DCMTK's ``dump2dcm``); each checked for the attributes PS3.4 Table K.6-1 requires."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence

from pacskit.errors import InputError, QueryError
from pacskit.query import keyword_of, vr_of
from pacskit.worklist.matching import element_of, text_elements, values_of
from pacskit.worklist.model import (
    CODE_SEQUENCES,
    CODE_VALUES,
    ONE_OF_IN_STEP,
    ONE_OF_TOP_LEVEL,
    REFERENCE_KEYS,
    REFERENCE_SEQUENCES,
    REQUIRED_IN_STEP,
    REQUIRED_TOP_LEVEL,
    STEP_SEQUENCE,
)

ITEM_UID_NAMESPACE = uuid.UUID("7f1d3c52-93a4-4c55-9a0c-4c0d8e3a9b10")
DUMP2DCM = "dump2dcm"


class InvalidItem(InputError):
    """A worklist item that lacks what PS3.4 Table K.6-1 requires, or cannot be read."""


def missing_attributes(item: Dataset) -> list[str]:
    """The Type 1 (and 1C) return keys of PS3.4 Table K.6-1 that ``item`` lacks or holds
    empty, as paths (``ScheduledProcedureStepSequence>Modality``). The Scheduled
    Procedure Step Sequence must hold exactly one item (Table K.6-1)."""
    missing = [k for k in REQUIRED_TOP_LEVEL if not _has(item, k)]
    missing += [" or ".join(pair) for pair in ONE_OF_TOP_LEVEL if not any(_has(item, k) for k in pair)]
    steps = element_of(item, STEP_SEQUENCE)
    if steps is None or steps.VR != "SQ" or len(steps.value) != 1:
        count = 0 if steps is None or steps.VR != "SQ" else len(steps.value)
        missing.append(f"{STEP_SEQUENCE} (one item, not {count})")
    else:
        step = steps.value[0]
        missing += [f"{STEP_SEQUENCE}>{k}" for k in REQUIRED_IN_STEP if not _has(step, k)]
        missing += [f"{STEP_SEQUENCE}>{' or '.join(pair)}" for pair in ONE_OF_IN_STEP
                    if not any(_has(step, k) for k in pair)]
        missing += _incomplete_codes(step, f"{STEP_SEQUENCE}>")
    missing += _incomplete_codes(item, "")
    for name in REFERENCE_SEQUENCES:
        for number, reference in enumerate(_items(item, name), 1):
            missing += [f"{name}[{number}]>{k}" for k in REFERENCE_KEYS if not _has(reference, k)]
    return missing


def _incomplete_codes(dataset: Dataset, prefix: str) -> list[str]:
    missing = []
    for name in CODE_SEQUENCES:
        for number, code in enumerate(_items(dataset, name), 1):
            if not any(_has(code, k) for k in CODE_VALUES):
                missing.append(f"{prefix}{name}[{number}]>CodeValue")
            if not _has(code, "CodingSchemeDesignator") and _has(code, "CodeValue"):
                missing.append(f"{prefix}{name}[{number}]>CodingSchemeDesignator")
    return missing


def _has(dataset: Dataset, keyword: str) -> bool:
    element = element_of(dataset, keyword)
    if element is None:
        return False
    if element.VR == "SQ":
        return bool(element.value)
    return bool(values_of(element))


def _items(dataset: Dataset, keyword: str) -> list[Dataset]:
    element = element_of(dataset, keyword)
    return list(element.value) if element is not None and element.VR == "SQ" and element.value else []


def checked(item: Dataset, source: str) -> Dataset:
    """``item``, once it holds every attribute Table K.6-1 requires; a Specific Character
    Set of ISO_IR 192 is added when text is not ASCII and none is given.

    Raises:
        InvalidItem: the attributes it lacks, with ``source`` (a file name, ``fields``).
    """
    missing = missing_attributes(item)
    if missing:
        raise InvalidItem(f"{source}: the worklist item lacks {', '.join(missing)} "
                          "(Type 1 in PS3.4 Table K.6-1)")
    if "SpecificCharacterSet" not in item and any(
            not str(e.value).isascii() for e in text_elements(item) if e.value is not None):
        item.SpecificCharacterSet = "ISO_IR 192"
    return item


def item_uid(item: Dataset) -> str:
    """The UID pacskit names an item by: the same for the same Study Instance UID,
    Requested Procedure ID and Scheduled Procedure Step ID (which identify a step, PS3.4
    K.6.1.1), so that adding an item twice does not make two."""
    step = item[STEP_SEQUENCE].value[0]
    key = "\\".join([str(item.StudyInstanceUID), str(item.RequestedProcedureID),
                     str(step.ScheduledProcedureStepID)])
    return f"2.25.{uuid.uuid5(ITEM_UID_NAMESPACE, key).int}"


def from_fields(fields: dict[str, str]) -> Dataset:
    """An item from ``Keyword`` → value pairs; a dotted keyword is an attribute of a
    sequence's one item (``ScheduledProcedureStepSequence.Modality``).

    Raises:
        InvalidItem: an unknown keyword, or an item that lacks what Table K.6-1 requires.
    """
    item = Dataset()
    for path, value in fields.items():
        try:
            names = [keyword_of(part) for part in path.split(".")]
        except QueryError as exc:
            raise InvalidItem(f"fields: {exc}") from None
        node = item
        for name in names[:-1]:
            if vr_of(name) != "SQ":
                raise InvalidItem(f"fields: {name} is not a sequence")
            if name not in node:
                node.add_new(name, "SQ", Sequence([Dataset()]))
            node = node[name].value[0]
        last = names[-1]
        vr = vr_of(last)
        if vr == "SQ":
            raise InvalidItem(f"fields: {last} is a sequence: give its attributes ({last}.Keyword=value)")
        node.add_new(last, vr, value.split("\\") if "\\" in value else value)
    return checked(item, "fields")


def from_json(document: Any, source: str) -> list[Dataset]:
    """Items from a DICOM JSON object, or a list of them.

    Raises:
        InvalidItem: not DICOM JSON, or an item that lacks what Table K.6-1 requires.
    """
    documents = document if isinstance(document, list) else [document]
    items = []
    for number, entry in enumerate(documents, 1):
        where = source if len(documents) == 1 else f"{source}[{number}]"
        if not isinstance(entry, dict):
            raise InvalidItem(f"{where}: not a DICOM JSON object")
        try:
            item = Dataset.from_json(entry)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on bad JSON
            raise InvalidItem(f"{where}: not DICOM JSON: {exc}") from None
        items.append(checked(item, where))
    return items


def from_file(path: Path) -> list[Dataset]:
    """The items of a DICOM JSON file (``.json``), a DCMTK dump (``.dump``, ``.txt``) or
    a DICOM file (``.wl`` or anything else).

    Raises:
        InvalidItem: the file cannot be read, or an item lacks what Table K.6-1 requires.
    """
    if not path.is_file():
        raise InvalidItem(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return from_json(json.loads(path.read_text(encoding="utf-8")), path.name)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidItem(f"{path.name}: not JSON: {exc}") from None
    if suffix in (".dump", ".txt"):
        return [checked(_read_dump(path), path.name)]
    return [checked(_read_dicom(path, path.name), path.name)]


def from_files(paths: Iterable[Path]) -> list[tuple[Path, list[Dataset]]]:
    """:func:`from_file` for each path, in order."""
    return [(path, from_file(path)) for path in paths]


def _read_dicom(path: Path, source: str) -> Dataset:
    try:
        ds = dcmread(path, force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise InvalidItem(f"{source}: not a DICOM file: {exc}") from None
    item = Dataset()
    for element in ds:
        item.add(element)
    if len(item) == 0:
        raise InvalidItem(f"{source}: not a DICOM file")
    return item


def _read_dump(path: Path) -> Dataset:
    program = shutil.which(DUMP2DCM)
    if program is None:
        raise InvalidItem(f"{path.name}: reading a DCMTK dump needs DCMTK's dump2dcm, which is not installed")
    with tempfile.TemporaryDirectory(prefix="pacskit-dump-") as folder:
        target = Path(folder) / "item.dcm"
        result = subprocess.run([program, "--quiet", str(path), str(target)], capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0 or not target.is_file():
            lines = (result.stderr or result.stdout).strip().splitlines() or ["dump2dcm failed"]
            raise InvalidItem(f"{path.name}: not a DCMTK dump: {lines[0]}")
        return _read_dicom(target, path.name)
