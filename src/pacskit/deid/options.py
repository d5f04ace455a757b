"""The options of the Basic Application Level Confidentiality Profile (PS3.15 E.3) and
their codes in CID 7050 "De-identification Method" (PS3.16), as pydicom's code
dictionary spells them."""

from __future__ import annotations

from collections.abc import Iterable

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from pacskit.errors import UsageError

BASIC_PROFILE_CODE: Code = codes.DCM.BasicApplicationConfidentialityProfile
OPTION_CODES: dict[str, Code] = {
    "retain-uids": codes.DCM.RetainUidsOption,
    "retain-full-dates": codes.DCM.RetainLongitudinalTemporalInformationFullDatesOption,
    "retain-modified-dates": codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption,
    "retain-patient-characteristics": codes.DCM.RetainPatientCharacteristicsOption,
    "retain-device-identity": codes.DCM.RetainDeviceIdentityOption,
    "retain-institution-identity": codes.DCM.RetainInstitutionIdentityOption,
    "retain-safe-private": codes.DCM.RetainSafePrivateOption,
    "clean-descriptors": codes.DCM.CleanDescriptorsOption,
    "clean-structured-content": codes.DCM.CleanStructuredContentOption,
    "clean-graphics": codes.DCM.CleanGraphicsOption,
}
OPTIONS: tuple[str, ...] = tuple(OPTION_CODES)


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
