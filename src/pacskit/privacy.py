"""The patient-name policy, applied in one place on every way out.

By default pacskit never requests patient names (C-FIND return keys, QIDO-RS fields),
drops them from every response, blanks them in every instance a retrieve writes or
hands back, and refuses a layout that would put one into a path. ``allow_patient_names``
opts in. The archive (server side) stores what it is sent, unchanged, and does not use
this policy.

Names are found at any depth, in sequences and in UN elements that hold one
(:mod:`pacskit.name_walk`, imported when a dataset is first looked at: the policy itself
needs no pydicom, so that an association that moves no dataset does not load it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pacskit.errors import UsageError

if TYPE_CHECKING:
    from pydicom import Dataset

    from pacskit.layout import Layout

PATIENT_NAME_KEYWORDS = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
)
"""The attributes withheld: every person name of the patient (PS3.3 C.7.1.1)."""
PATIENT_NAME_TAGS = frozenset({0x00100010, 0x00101001, 0x00101005, 0x00101060})
"""Their tags (PS3.6 Table 6-1), as literals so that the policy needs no pydicom."""


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

    def check_layout(self, layout: Layout) -> None:
        """Refuse a layout that would write a withheld name into a path.

        Raises:
            UsageError: a field of ``layout`` is a patient name, and names are withheld.
        """
        if self.allow_patient_names:
            return
        named = [field for field in layout.fields if field in PATIENT_NAME_KEYWORDS]
        if named:
            raise UsageError(f"invalid layout {layout.template!r}: {{{named[0]}}} is a patient name, "
                             "which pacskit does not write unless allow_patient_names is set")

    def scrub_response(self, dataset: Dataset) -> Dataset:
        """Delete patient-name attributes from a query response (in place; returned)."""
        if self.withholds_names:
            from pacskit.name_walk import delete_names

            delete_names(dataset)
        return dataset

    def blank_instance(self, dataset: Dataset) -> Dataset:
        """Empty the patient-name attributes of an instance, at any depth (in place).

        The attributes stay present (PatientName is Type 2 in most IODs) but empty. A UN
        element that holds a name in a sequence pacskit cannot read is removed.
        """
        if self.withholds_names:
            from pacskit.name_walk import blank_names

            blank_names(dataset)
        return dataset


DEFAULT_PRIVACY = PrivacyPolicy()
