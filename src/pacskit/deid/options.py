"""The options of the Basic Application Level Confidentiality Profile (PS3.15 E.3) and
their codes in CID 7050 "De-identification Method" (PS3.16), as pydicom's code
dictionary spells them."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

from pacskit.errors import UsageError

if TYPE_CHECKING:
    from pydicom.sr.coding import Code

BASIC_PROFILE = "BasicApplicationConfidentialityProfile"
OPTION_CODES: dict[str, str] = {
    "retain-uids": "RetainUidsOption",
    "retain-full-dates": "RetainLongitudinalTemporalInformationFullDatesOption",
    "retain-modified-dates": "RetainLongitudinalTemporalInformationModifiedDatesOption",
    "retain-patient-characteristics": "RetainPatientCharacteristicsOption",
    "retain-device-identity": "RetainDeviceIdentityOption",
    "retain-institution-identity": "RetainInstitutionIdentityOption",
    "retain-safe-private": "RetainSafePrivateOption",
    "clean-descriptors": "CleanDescriptorsOption",
    "clean-structured-content": "CleanStructuredContentOption",
    "clean-graphics": "CleanGraphicsOption",
}
"""Each option and its keyword in pydicom's DCM code dictionary."""
OPTIONS: tuple[str, ...] = tuple(OPTION_CODES)


@cache
def method_code(keyword: str) -> Code:
    """The CID 7050 code of ``keyword`` (:data:`BASIC_PROFILE` or a value of
    :data:`OPTION_CODES`), from pydicom's code dictionary (imported only here: it is
    large)."""
    from pydicom.sr.codedict import codes

    code: Code = getattr(codes.DCM, keyword)
    return code


def parse_options(values: Iterable[str]) -> frozenset[str]:
    """The options named by ``values`` (each a name or a comma-separated list of names).

    Raises:
        UsageError: an unknown name, or both kinds of longitudinal dates (PS3.15 E.3.6).
    """
    chosen = set()
    for value in values:
        for name in (part.strip().lower() for part in value.split(",")):
            if not name:
                continue
            if name not in OPTION_CODES:
                raise UsageError(f"unknown de-identification option {name!r} (known: {', '.join(OPTIONS)})")
            chosen.add(name)
    if {"retain-full-dates", "retain-modified-dates"} <= chosen:
        raise UsageError("retain-full-dates and retain-modified-dates exclude each other (PS3.15 E.3.6)")
    return frozenset(chosen)
