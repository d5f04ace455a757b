"""What the codes of the DICOM Upper Layer protocol mean, in words a log can show:
PDU types (PS3.8 9.3.1), association rejection (PS3.8 Table 9-21), abort (PS3.8
Table 9-26) and presentation context results (PS3.8 Table 9-18)."""

from __future__ import annotations

PDU_TYPES = {
    0x01: "A-ASSOCIATE-RQ",
    0x02: "A-ASSOCIATE-AC",
    0x03: "A-ASSOCIATE-RJ",
    0x04: "P-DATA-TF",
    0x05: "A-RELEASE-RQ",
    0x06: "A-RELEASE-RP",
    0x07: "A-ABORT",
}
"""PDU types (PS3.8 9.3.1)."""

REJECT_RESULTS = {1: "permanent", 2: "transient"}
"""A-ASSOCIATE-RJ Result (PS3.8 Table 9-21)."""

REJECT_SOURCES = {
    1: "DICOM UL service-user",
    2: "DICOM UL service-provider (ACSE related function)",
    3: "DICOM UL service-provider (presentation related function)",
}
"""A-ASSOCIATE-RJ Source (PS3.8 Table 9-21)."""

REJECT_REASONS = {
    1: {1: "no reason given", 2: "application context name not supported",
        3: "calling AE title not recognised", 7: "called AE title not recognised"},
    2: {1: "no reason given", 2: "protocol version not supported"},
    3: {1: "temporary congestion", 2: "local limit exceeded"},
}
"""A-ASSOCIATE-RJ Reason/Diag., by Source (PS3.8 Table 9-21); other values are reserved."""

ABORT_SOURCES = {0: "DICOM UL service-user", 1: "reserved source", 2: "DICOM UL service-provider"}
"""A-ABORT Source (PS3.8 Table 9-26)."""

ABORT_REASONS = {
    0: "reason not specified",
    1: "unrecognised PDU",
    2: "unexpected PDU",
    4: "unrecognised PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
}
"""A-ABORT Reason/Diag., significant when the provider aborted (PS3.8 Table 9-26)."""

CONTEXT_RESULTS = {
    0: "acceptance",
    1: "user rejection",
    2: "no reason (provider rejection)",
    3: "abstract syntax not supported (provider rejection)",
    4: "transfer syntaxes not supported (provider rejection)",
}
"""Presentation context Result/Reason of an A-ASSOCIATE-AC (PS3.8 Table 9-18)."""


def pdu_type(value: int) -> str:
    """``P-DATA-TF`` for 0x04; an unknown type as ``PDU type 0x0A``."""
    return PDU_TYPES.get(value, f"PDU type 0x{value:02X}")


def reject_result(result: int) -> str:
    """``permanent`` or ``transient`` (or the unknown number)."""
    return REJECT_RESULTS.get(result, f"result {result}")


def reject_source(source: int) -> str:
    """Who rejected the association."""
    return REJECT_SOURCES.get(source, f"source {source}")


def reject_reason(source: int, reason: int) -> str:
    """Why the association was rejected, as the source's table says."""
    return REJECT_REASONS.get(source, {}).get(reason, f"reserved reason {reason}")


def abort_source(source: int) -> str:
    """Who aborted the association."""
    return ABORT_SOURCES.get(source, f"source {source}")


def abort_reason(source: int, reason: int) -> str:
    """Why, when the service provider aborted; empty for a service-user abort, whose
    reason is not significant (PS3.8 9.3.8)."""
    if source != 2:
        return ""
    return ABORT_REASONS.get(reason, f"reserved reason {reason}")


def context_result(result: int) -> str:
    """What the acceptor said of a presentation context."""
    return CONTEXT_RESULTS.get(result, f"result {result}")
