"""DICOM upper layer PDUs and DIMSE command sets as bytes, built and read by hand, for
tests that must put on the wire what no conforming implementation would (PS3.8 9.3,
Annex E; PS3.7 6.3, Annex E). The A-ASSOCIATE-RQ/AC item encoding is pynetdicom's;
everything after the association is this module's."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydicom import Dataset
from pynetdicom.dsutils import encode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import PresentationContext

from pacskit.net.commands import (
    AFFECTED_SOP_CLASS_UID,
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    MESSAGE_ID,
    NO_DATA_SET,
    command_set,
    uid,
    us,
)

A_ASSOCIATE_RQ_PDU = 0x01
A_ASSOCIATE_AC_PDU = 0x02
A_ASSOCIATE_RJ_PDU = 0x03
P_DATA_TF_PDU = 0x04
A_RELEASE_RQ_PDU = 0x05
A_RELEASE_RP_PDU = 0x06
A_ABORT_PDU = 0x07

COMMAND_FRAGMENT = 0x01
LAST_FRAGMENT = 0x02

# A-ABORT (PS3.8 9.3.8, Table 9-26)
SERVICE_USER = 0x00
SERVICE_PROVIDER = 0x02
REASON_NOT_SPECIFIED = 0x00
UNRECOGNIZED_PDU = 0x01
UNEXPECTED_PDU = 0x02
UNRECOGNIZED_PDU_PARAMETER = 0x04
UNEXPECTED_PDU_PARAMETER = 0x05
INVALID_PDU_PARAMETER_VALUE = 0x06

VERIFICATION = "1.2.840.10008.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
TEST_IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1317.99"

C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_FIND_RSP = 0x8020
C_GET_RSP = 0x8010
N_ACTION_RQ = 0x0130
N_ACTION_RSP = 0x8130
MESSAGE_ID_BEING_RESPONDED_TO = 0x0120
STATUS = 0x0900
REQUESTED_SOP_CLASS_UID = 0x0003
REQUESTED_SOP_INSTANCE_UID = 0x1001
ACTION_TYPE_ID = 0x1008
PENDING = 0xFF00


def pdu(pdu_type: int, body: bytes) -> bytes:
    """A PDU: type, reserved byte, 4-byte big-endian length, body (PS3.8 9.3.1)."""
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def pdv(context_id: int, control: int, value: bytes) -> bytes:
    """A Presentation Data Value item: length, context ID, message control header, value
    (PS3.8 9.3.5.1, Annex E.2)."""
    return struct.pack(">IBB", len(value) + 2, context_id, control) + value


def p_data_tf(*items: bytes) -> bytes:
    """A P-DATA-TF PDU holding the PDV ``items`` (PS3.8 9.3.5)."""
    return pdu(P_DATA_TF_PDU, b"".join(items))


def message_pdvs(context_id: int, command: bytes, data: bytes | None = None,
                 data_context_id: int | None = None) -> list[bytes]:
    """A whole DIMSE message as two PDVs (command, then dataset if any), the dataset on
    ``data_context_id`` when given (which PS3.8 Annex E.1 forbids)."""
    items = [pdv(context_id, COMMAND_FRAGMENT | LAST_FRAGMENT, command)]
    if data is not None:
        items.append(pdv(data_context_id or context_id, LAST_FRAGMENT, data))
    return items


def release_rq() -> bytes:
    """An A-RELEASE-RQ PDU (PS3.8 9.3.6)."""
    return pdu(A_RELEASE_RQ_PDU, b"\0\0\0\0")


def release_rp() -> bytes:
    """An A-RELEASE-RP PDU (PS3.8 9.3.7)."""
    return pdu(A_RELEASE_RP_PDU, b"\0\0\0\0")


def abort(source: int = SERVICE_USER, reason: int = REASON_NOT_SPECIFIED) -> bytes:
    """An A-ABORT PDU (PS3.8 9.3.8)."""
    return pdu(A_ABORT_PDU, bytes([0, 0, source, reason]))


@dataclass(frozen=True)
class Abort:
    """A received A-ABORT's source and reason/diag (PS3.8 Table 9-26)."""

    source: int
    reason: int

    @classmethod
    def parse(cls, body: bytes) -> Abort:
        return cls(body[2], body[3])


def parse_pdvs(body: bytes) -> list[tuple[int, int, bytes]]:
    """The (context ID, message control header, value) of each PDV in a P-DATA-TF body.

    Raises:
        ValueError: a PDV runs past the end of the PDU.
    """
    items, pos = [], 0
    while pos < len(body):
        length, context_id, control = struct.unpack_from(">IBB", body, pos)
        if length < 2 or pos + 4 + length > len(body):
            raise ValueError(f"PDV of length {length} at offset {pos} runs past the PDU end")
        items.append((context_id, control, body[pos + 6:pos + 4 + length]))
        pos += 4 + length
    return items


def parse_command(raw: bytes) -> dict[int, bytes]:
    """The elements of a group 0000 command set (Implicit VR Little Endian), by element
    number, raw values (PS3.7 6.3.1)."""
    elements, pos = {}, 0
    while pos + 8 <= len(raw):
        group, element, length = struct.unpack_from("<HHI", raw, pos)
        if group != 0x0000:
            raise ValueError(f"element ({group:04X},{element:04X}) in a command set")
        elements[element] = raw[pos + 8:pos + 8 + length]
        pos += 8 + length
    return elements


@dataclass
class Message:
    """A received DIMSE message: its context, command elements and dataset bytes."""

    context_id: int
    command: dict[int, bytes]
    data: bytes | None = None

    def us(self, element: int) -> int | None:
        raw = self.command.get(element)
        return struct.unpack("<H", raw[:2])[0] if raw is not None and len(raw) >= 2 else None

    def text(self, element: int) -> str:
        return self.command.get(element, b"").rstrip(b"\0 ").decode("ascii", "replace")

    @property
    def command_field(self) -> int | None:
        return self.us(COMMAND_FIELD)

    @property
    def status(self) -> int | None:
        return self.us(STATUS)

    @property
    def responds_to(self) -> int | None:
        return self.us(MESSAGE_ID_BEING_RESPONDED_TO)

    @property
    def message_id(self) -> int | None:
        return self.us(MESSAGE_ID)


def c_echo_rq(message_id: int) -> bytes:
    """A C-ECHO-RQ (PS3.7 9.3.5.1)."""
    return command_set((AFFECTED_SOP_CLASS_UID, uid(VERIFICATION)), (COMMAND_FIELD, us(C_ECHO_RQ)),
                       (MESSAGE_ID, us(message_id)), (COMMAND_DATA_SET_TYPE, us(NO_DATA_SET)))


def n_action_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str, action: int = 1) -> bytes:
    """An N-ACTION-RQ without action information (PS3.7 10.3.4.1)."""
    return command_set((REQUESTED_SOP_CLASS_UID, uid(sop_class_uid)), (COMMAND_FIELD, us(N_ACTION_RQ)),
                       (MESSAGE_ID, us(message_id)), (COMMAND_DATA_SET_TYPE, us(NO_DATA_SET)),
                       (REQUESTED_SOP_INSTANCE_UID, uid(sop_instance_uid)),
                       (ACTION_TYPE_ID, us(action)))


def unknown_rq(message_id: int, command_field: int, sop_class_uid: str) -> bytes:
    """A request whose Command Field is ``command_field``, defined by no DIMSE service."""
    return command_set((AFFECTED_SOP_CLASS_UID, uid(sop_class_uid)), (COMMAND_FIELD, us(command_field)),
                       (MESSAGE_ID, us(message_id)), (COMMAND_DATA_SET_TYPE, us(NO_DATA_SET)))


def dataset_bytes(dataset: Dataset, transfer_syntax: str = IMPLICIT_LE) -> bytes:
    """``dataset`` as a P-DATA dataset fragment carries it, in Implicit or Explicit VR
    Little Endian."""
    assert transfer_syntax in (IMPLICIT_LE, EXPLICIT_LE), transfer_syntax
    encoded = encode(dataset, transfer_syntax == IMPLICIT_LE, True)
    assert encoded is not None
    return encoded


def has_data_set(command: dict[int, bytes]) -> bool:
    raw = command.get(COMMAND_DATA_SET_TYPE, us(NO_DATA_SET))
    return struct.unpack("<H", raw[:2])[0] != NO_DATA_SET


@dataclass(frozen=True)
class Proposed:
    """A presentation context to propose: ID, abstract syntax, transfer syntaxes."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: Sequence[str] = (IMPLICIT_LE,)


@dataclass
class Negotiated:
    """What an A-ASSOCIATE-AC said: accepted contexts (ID → abstract syntax, transfer
    syntax), the SCP/SCU roles it granted (SOP class → (scu, scp)), its maximum PDU."""

    contexts: dict[int, tuple[str, str]]
    max_pdu: int
    roles: dict[str, tuple[bool, bool]] = field(default_factory=dict)


def associate_rq(called: str, calling: str, contexts: Iterable[Proposed], max_pdu: int = 65536,
                 scp_roles: Iterable[str] = ()) -> bytes:
    """An A-ASSOCIATE-RQ PDU proposing ``contexts``, asking for the SCP role (keeping the
    SCU role) for each SOP class of ``scp_roles`` (PS3.8 9.3.2, PS3.7 D.3.3.4)."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    proposed = []
    abstract_syntaxes = {}
    for item in contexts:
        context = PresentationContext()
        context.context_id = item.context_id
        context.abstract_syntax = item.abstract_syntax
        context.transfer_syntax = list(item.transfer_syntaxes)
        proposed.append(context)
        abstract_syntaxes[item.context_id] = item.abstract_syntax
    primitive.presentation_context_definition_list = proposed
    maximum = MaximumLengthNotification()
    maximum.maximum_length_received = max_pdu
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = TEST_IMPLEMENTATION_UID
    roles = []
    for sop_class in scp_roles:
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = sop_class
        role.scu_role = True
        role.scp_role = True
        roles.append(role)
    primitive.user_information = [maximum, implementation, *roles]
    request = A_ASSOCIATE_RQ()
    request.from_primitive(primitive)
    return request.encode()


def read_associate_ac(body: bytes, proposed: Iterable[Proposed]) -> Negotiated:
    """The accepted contexts, roles and maximum PDU length of an A-ASSOCIATE-AC body."""
    answer = A_ASSOCIATE_AC()
    answer.decode(pdu(A_ASSOCIATE_AC_PDU, body))
    primitive = answer.to_primitive()
    syntaxes = {item.context_id: item.abstract_syntax for item in proposed}
    contexts = {int(result.context_id): (syntaxes[int(result.context_id)], str(result.transfer_syntax[0]))
                for result in primitive.presentation_context_definition_results_list
                if result.result == 0x00}
    max_pdu = next((int(item.maximum_length_received or 0) for item in primitive.user_information
                    if isinstance(item, MaximumLengthNotification)), 0)
    roles = {str(item.sop_class_uid): (bool(item.scu_role), bool(item.scp_role))
             for item in primitive.user_information if isinstance(item, SCP_SCU_RoleSelectionNegotiation)}
    return Negotiated(contexts, max_pdu, roles)


def find_identifier(level: str = "STUDY", **keys: str) -> bytes:
    """A C-FIND identifier at ``level`` with the given keys (empty values: return keys)."""
    dataset = Dataset()
    dataset.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(dataset, keyword, value)
    return dataset_bytes(dataset)

