"""The patient-name policy, applied in one place on every way out.

By default pacskit never requests patient names (C-FIND return keys, QIDO-RS fields),
drops them from every response, and blanks them in every instance a retrieve writes or
hands back. ``allow_patient_names`` opts in. The archive (server side) stores what it is
sent, unchanged, and does not use this policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword

PATIENT_NAME_KEYWORDS = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
)
PATIENT_NAME_TAGS = frozenset(tag_for_keyword(k) for k in PATIENT_NAME_KEYWORDS)


@dataclass(frozen=True)
class PrivacyPolicy:
    """Whether patient names may be requested, shown and written.

    Attributes:
        allow_patient_names: the explicit opt-in; ``False`` by default.
    """

    allow_patient_names: bool = False

    @property
    def withholds_names(self) -> bool:
        """``True`` when names must not be requested, shown or written."""
        return not self.allow_patient_names

    def filter_return_keys(self, keys: Iterable[str]) -> list[str]:
        """``keys`` without the patient-name keywords, unless names are allowed."""
        if self.allow_patient_names:
            return list(keys)
        return [k for k in keys if k not in PATIENT_NAME_KEYWORDS]

    def scrub_response(self, dataset: Dataset) -> Dataset:
        """Delete patient-name attributes from a query response (in place; returned)."""
        if self.withholds_names:
            _walk(dataset, delete=True)
        return dataset

    def blank_instance(self, dataset: Dataset) -> Dataset:
        """Empty the patient-name attributes of an instance, at any depth (in place).

        The attributes stay present (PatientName is Type 2 in most IODs) but empty.
        """
        if self.withholds_names:
            _walk(dataset, delete=False)
        return dataset


DEFAULT_PRIVACY = PrivacyPolicy()


def contains_names(dataset: Dataset) -> bool:
    """Whether any patient-name attribute at any depth has a non-empty value."""
    for tag in PATIENT_NAME_TAGS & set(dataset.keys()):
        if dataset[tag].value not in (None, "", b""):
            return True
    return any(contains_names(item) for seq in _sequences(dataset) for item in seq)


def _walk(dataset: Dataset, *, delete: bool) -> None:
    for tag in PATIENT_NAME_TAGS & set(dataset.keys()):
        if delete:
            del dataset[tag]
        else:
            dataset[tag].value = ""
    for sequence in _sequences(dataset):
        for item in sequence:
            _walk(item, delete=delete)


def _sequences(dataset: Dataset) -> list[list[Dataset]]:
    return [elem.value for elem in dataset if elem.VR == "SQ" and elem.value]
