"""The pacskit exception tree.

Every failure a user can cause is one of these; the CLI maps each class to a one-line
message and its own exit code (``exit_code``), in one place (``pacskit.cli.main``).

::

    PacskitError
    ├── UsageError                  an option or argument that cannot be used,
    │                               e.g. a malformed --layout              (2)
    ├── ConfigError                 bad settings file or value             (3)
    │   ├── UnknownNode             a node name not in the nodes table     (4)
    │   └── InvalidAddress          malformed dicom:// address, AE title, port (5)
    ├── QueryError                  a key unknown or invalid for the level (6)
    ├── InputError                  input files missing, or none is DICOM  (7)
    ├── DeidentificationSecretMissing  de-identification asked for, no
    │                               secret to key its pseudonyms           (8)
    ├── MissingExtra                the command needs an optional extra
    │                               that is not installed                  (9)
    ├── NetworkError                the peer could not be reached          (10)
    │   ├── HostNotFound            the host name does not resolve         (11)
    │   ├── ConnectionRefused       nothing listens on host:port           (12)
    │   ├── NetworkTimeout          no answer within a timeout             (13)
    │   │   └── NoCommitmentReport  commit: no Storage Commitment report
    │   │                           within the timeout                     (19)
    │   ├── AssociationRejected     A-ASSOCIATE-RJ, with its reason        (14)
    │   ├── AssociationAborted      A-ABORT or connection lost             (15)
    │   ├── AccessDenied            HTTP 401/403 from a DICOMweb server, or
    │   │                           a user identity not confirmed          (16)
    │   └── TlsFailure              no TLS session: the peer does not speak
    │       │                       TLS, or not ours, or refused our
    │       │                       certificate                            (17)
    │       └── CertificateRejected the peer's certificate is untrusted,
    │                               expired or names another host          (18)
    ├── DimseError                  the service failed                     (20)
    │   ├── DimseFailure            a failure status (status, comment)     (21)
    │   ├── ServiceNotSupported     no presentation context accepted       (22)
    │   ├── NoStorageRole           C-GET without an SCP role negotiated   (23)
    │   ├── MoveDestinationUnknown  0xA801                                 (24)
    │   ├── RetrieveFailed          every sub-operation failed             (25)
    │   ├── HttpFailure             a DICOMweb request failed (HTTP status
    │   │                           or malformed response)                 (27)
    │   ├── InstancesNotReceived    retrieve: instances reported sent did
    │   │                           not arrive                             (28)
    │   └── NotCommitted            commit: the report says some instances
    │                               failed                                 (29)
    ├── PartialFailure              some items failed, others succeeded    (26)
    └── OutputError                 an output cannot be written            (30)
        └── DiskFull                no space left on device                (31)
"""

from __future__ import annotations


class PacskitError(Exception):
    """Base of every error pacskit raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(PacskitError):
    """A command-line option or call argument that cannot be used as given: a malformed
    layout, or one that would write a withheld patient name into a path. Exit code 2,
    as for the command line's own usage errors."""

    exit_code = 2


class ConfigError(PacskitError):
    """The configuration (file, environment or flag) is invalid."""

    exit_code = 3


class UnknownNode(ConfigError):
    """A node name that is not in the nodes table."""

    exit_code = 4


class InvalidAddress(ConfigError):
    """A malformed node address: ``dicom://AET@host:port``, AE title or port."""

    exit_code = 5


class QueryError(PacskitError):
    """A query key unknown, or invalid for the level, or a malformed value."""

    exit_code = 6


class InputError(PacskitError):
    """Input paths that do not exist, or hold no DICOM file to work on."""

    exit_code = 7


class DeidentificationSecretMissing(PacskitError):
    """De-identification was asked for, and no secret keys its pseudonyms
    (``deidentify.secret``, ``deidentify.secret_file``, ``PACSKIT_DEIDENTIFY__SECRET``)."""

    exit_code = 8


class MissingExtra(PacskitError):
    """The command needs packages of an optional extra (``pacskit[server]``,
    ``pacskit[pixels]``) that are not installed (see :mod:`pacskit.extras`)."""

    exit_code = 9


class NetworkError(PacskitError):
    """The peer could not be reached or the connection failed."""

    exit_code = 10


class HostNotFound(NetworkError):
    """The peer's host name does not resolve."""

    exit_code = 11


class ConnectionRefused(NetworkError):
    """Nothing accepts connections at the peer's host and port."""

    exit_code = 12


class NetworkTimeout(NetworkError):
    """The peer did not answer within the configured timeout."""

    exit_code = 13


class AssociationRejected(NetworkError):
    """The peer rejected the association (A-ASSOCIATE-RJ, PS3.8 9.3.4).

    Attributes:
        result: 1 rejected-permanent, 2 rejected-transient.
        source: 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation).
        reason: the reason code, interpreted by ``source``.
    """

    exit_code = 14

    def __init__(self, message: str, result: int = 0, source: int = 0, reason: int = 0) -> None:
        super().__init__(message)
        self.result = result
        self.source = source
        self.reason = reason


class AssociationAborted(NetworkError):
    """The association was aborted (A-ABORT, A-P-ABORT) or the connection dropped."""

    exit_code = 15


class AccessDenied(NetworkError):
    """A DICOMweb server refused our credentials, or has none for us (HTTP 401, 403); or
    a DIMSE peer accepted an association without the positive response to the User
    Identity we required (``--pos-response``, PS3.7 D.3.3.7)."""

    exit_code = 16


class TlsFailure(NetworkError):
    """No DICOM TLS session (PS3.15 B.1): the peer speaks plain DICOM on a TLS port, or
    TLS on a plain one, or no common protocol version or cipher suite, or it refused our
    certificate (or our lack of one)."""

    exit_code = 17


class CertificateRejected(TlsFailure):
    """The peer's certificate does not verify: not signed by a trusted CA, expired or not
    yet valid, or naming another host than the one we called."""

    exit_code = 18


class DimseError(PacskitError):
    """A DIMSE service did not succeed."""

    exit_code = 20


class DimseFailure(DimseError):
    """The peer answered with a failure status (PS3.7 Annex C).

    Attributes:
        status: the Status (0000,0900) value.
        comment: the Error Comment (0000,0902), when the peer sent one.
    """

    exit_code = 21

    def __init__(self, message: str, status: int = 0, comment: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.comment = comment


class ServiceNotSupported(DimseError):
    """The peer accepted no presentation context for the requested service."""

    exit_code = 22


class NoStorageRole(DimseError):
    """C-GET needs the peer to accept pacskit as a Storage SCP (role selection)."""

    exit_code = 23


class MoveDestinationUnknown(DimseFailure):
    """C-MOVE destination unknown to the peer (0xA801)."""

    exit_code = 24


class RetrieveFailed(DimseError):
    """A retrieve finished but none of its sub-operations succeeded."""

    exit_code = 25


class PartialFailure(PacskitError):
    """Some items failed while others succeeded (a store, a retrieve, an echo of many)."""

    exit_code = 26


class OutputError(PacskitError):
    """An output folder or file cannot be written."""

    exit_code = 30


class DiskFull(OutputError):
    """No space left on the device while writing."""

    exit_code = 31


class HttpFailure(DimseError):
    """A DICOMweb request failed: an HTTP error status (``status``), or a response that
    is not what PS3.18 says it is."""

    exit_code = 27

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class InstancesNotReceived(DimseError):
    """Retrieve: instances reported sent did not arrive — a C-MOVE peer counted more
    sub-operations completed (or with a warning) than reached our Storage SCP, having
    sent the rest to another host or port registered for our AE title."""

    exit_code = 28


class NotCommitted(DimseError):
    """Storage Commitment: the report lists instances the SCP did not commit (its Failed
    SOP Sequence, PS3.4 J.3.3)."""

    exit_code = 29


class NoCommitmentReport(NetworkTimeout):
    """Storage Commitment: the request was accepted, but no report came within the
    timeout, on its association or on a new one to our AE title and port."""

    exit_code = 19
