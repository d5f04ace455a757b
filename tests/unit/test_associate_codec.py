"""pacskit's requestor-side A-ASSOCIATE codec against pynetdicom's (PS3.8 9.3.2-9.3.4,
PS3.7 Annex D): each A-ASSOCIATE-RQ byte for byte as pynetdicom's ``A_ASSOCIATE_RQ``
encodes it, each field of an A-ASSOCIATE-AC or -RJ pynetdicom encoded as its decoder reads
it, the roles as its ``negotiate_as_requestor`` negotiates them."""

from __future__ import annotations

import itertools

import pytest
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext, build_context, negotiate_as_requestor

from pacskit.net.ul.associate_ac import AssociateAc, ContextResult, Rejection, decode_ac
from pacskit.net.ul.associate_rq import (
    AssociateRq,
    Context,
    ProposedContext,
    SopClassCommonExtended,
    SopClassExtended,
)
from pacskit.net.ul.negotiation import Proposal
from pacskit.net.ul.negotiation import negotiate_as_requestor as ours_as_requestor
from pacskit.net.ul.user_identity import JWT, USERNAME, USERNAME_AND_PASSCODE, UserIdentity

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
JPEG_LS = "1.2.840.10008.1.2.4.80"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.1"
LONG_UID = "1.2.826.0.1.3680043.10.1317." + "9" * 36

CONTEXT_SETS = {
    "echo": [(VERIFICATION, (IMPLICIT, EXPLICIT, "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"))],
    "two": [(CT, (EXPLICIT, IMPLICIT)), (MR, (JPEG_LS,))],
    "long uids": [(LONG_UID, (IMPLICIT, LONG_UID)), (FIND, (EXPLICIT,))],
    "127": [(f"1.2.826.0.1.3680043.10.1317.{n}", (IMPLICIT,)) for n in range(127)],
}
TITLES = [("A", "B"), ("PACSKIT", "ANY-SCP"), ("SIXTEEN_CHARS_AE", "ARCHIVE SPACE")]
MAX_LENGTHS = [0, 16384, 0xFFFFFFFF]
VERSION_NAMES = ["", "PACSKIT", "SIXTEEN_CHARS_VN"]
WINDOWS = [None, (1, 1), (0, 65535)]
ROLE_SETS = [{}, {CT: (False, True)}, {CT: (True, True), MR: (True, False)}]
IDENTITIES = [None, UserIdentity(USERNAME, b"bob"), UserIdentity(USERNAME_AND_PASSCODE, b"alice", b"pw", True),
              UserIdentity(JWT, b"eyJ." + b"x" * 3000, response_requested=True)]
EXTENDED_SETS = [(), (SopClassExtended(FIND, b"\x01\x01\x00"),),
                 (SopClassCommonExtended(CT, "1.2.840.10008.4.2", (MR, LONG_UID)), SopClassExtended(MR, b""))]


def pynetdicom_rq(request: AssociateRq) -> bytes:
    """The same request as pynetdicom's A_ASSOCIATE_RQ encodes it."""
    primitive = A_ASSOCIATE()
    primitive.calling_ae_title = request.calling_ae_title
    primitive.called_ae_title = request.called_ae_title
    primitive.application_context_name = request.application_context_name
    contexts = []
    for proposed in request.contexts:
        context = build_context(proposed.abstract_syntax, list(proposed.transfer_syntax))
        context.context_id = proposed.context_id
        contexts.append(context)
    primitive.presentation_context_definition_list = contexts
    maximum = MaximumLengthNotification()
    maximum.maximum_length_received = request.max_length
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = request.implementation_class_uid
    items: list[object] = [maximum, implementation]
    if request.implementation_version_name:
        version = ImplementationVersionNameNotification()
        version.implementation_version_name = request.implementation_version_name
        items.append(version)
    if request.window is not None:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked, window.maximum_number_operations_performed = request.window
        items.append(window)
    for uid, (scu, scp) in request.roles.items():
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid, role.scu_role, role.scp_role = uid, scu, scp
        items.append(role)
    if request.identity is not None:
        identity = UserIdentityNegotiation()
        identity.user_identity_type = request.identity.kind
        identity.positive_response_requested = request.identity.response_requested
        identity.primary_field = request.identity.primary
        identity.secondary_field = request.identity.secondary
        items.append(identity)
    for extended in request.extended:
        if isinstance(extended, SopClassExtended):
            item = SOPClassExtendedNegotiation()
            item.sop_class_uid = extended.sop_class_uid
            item.service_class_application_information = extended.information
        else:
            item = SOPClassCommonExtendedNegotiation()
            item.sop_class_uid = extended.sop_class_uid
            item.service_class_uid = extended.service_class_uid
            item.related_general_sop_class_identification = list(extended.related_general_sop_classes)
        items.append(item)
    primitive.user_information = items
    return bytes(A_ASSOCIATE_RQ(primitive).encode())


def numbered(contexts: list[tuple[str, tuple[str, ...]]]) -> list[ProposedContext]:
    return [ProposedContext(2 * n + 1, abstract, syntaxes) for n, (abstract, syntaxes) in enumerate(contexts)]


REQUESTS = [
    AssociateRq(calling, called, numbered(contexts), max_length, IMPLEMENTATION_UID, version, window, roles,
                identity, extended)
    for (calling, called), contexts, max_length, version, window, roles, identity, extended in itertools.islice(
        itertools.product(TITLES, CONTEXT_SETS.values(), MAX_LENGTHS, VERSION_NAMES, WINDOWS, ROLE_SETS,
                          IDENTITIES, EXTENDED_SETS), 0, None, 7)
]


@pytest.mark.parametrize("request_", REQUESTS, ids=range(len(REQUESTS)))
def test_an_associate_rq_is_pynetdicoms_byte_for_byte(request_):
    assert request_.encode() == pynetdicom_rq(request_)


def test_the_table_covers_hundreds_of_requests_and_every_value():
    assert len(REQUESTS) > 400
    for values, attribute in ((MAX_LENGTHS, "max_length"), (WINDOWS, "window"), (IDENTITIES, "identity"),
                              (VERSION_NAMES, "implementation_version_name")):
        assert {repr(v) for v in values} == {repr(getattr(r, attribute)) for r in REQUESTS}


@pytest.mark.parametrize("contexts", [[build_context(CT, [EXPLICIT, IMPLICIT]), build_context(VERIFICATION)],
                                      [Context(CT, (EXPLICIT, IMPLICIT)), Context(VERIFICATION)]],
                         ids=["pynetdicom contexts", "pacskit contexts"])
def test_a_proposal_numbers_its_contexts_and_proposes_its_roles(contexts):
    proposal = Proposal("ME", "ARCHIVE", contexts, 65536, {CT: (True, True)},
                        identity=UserIdentity(USERNAME, b"bob"))
    encoded = proposal.encode()
    assert [(cx.context_id, cx.scu_role, cx.scp_role) for cx in proposal.numbered] == [(1, True, True),
                                                                                      (3, None, None)]
    expected = AssociateRq("ME", "ARCHIVE", proposal.numbered, 65536, "1.2.826.0.1.3680043.8.498.1", "PACSKIT",
                           roles={CT: (True, True)}, identity=UserIdentity(USERNAME, b"bob"))
    assert encoded == pynetdicom_rq(expected)


@pytest.mark.parametrize("bad", [
    AssociateRq("SEVENTEEN_CHARS_A", "B", numbered([(CT, (IMPLICIT,))]), 0, IMPLEMENTATION_UID),
    AssociateRq("   ", "B", numbered([(CT, (IMPLICIT,))]), 0, IMPLEMENTATION_UID),
    AssociateRq("A", "B", [ProposedContext(2, CT, (IMPLICIT,))], 0, IMPLEMENTATION_UID),
    AssociateRq("A", "B", [ProposedContext(1, CT, ())], 0, IMPLEMENTATION_UID),
    AssociateRq("A", "B", [], 0, IMPLEMENTATION_UID),
    AssociateRq("A", "B", numbered([(CT, (IMPLICIT,))] * 129), 0, IMPLEMENTATION_UID),
    AssociateRq("A", "B", numbered([(CT, (IMPLICIT,))]), 1 << 32, IMPLEMENTATION_UID),
    AssociateRq("A", "B", numbered([(CT, (IMPLICIT,))]), 0, IMPLEMENTATION_UID, "SEVENTEEN_CHARS_V"),
    AssociateRq("A", "B", numbered([(CT, (IMPLICIT,))]), 0, IMPLEMENTATION_UID,
                identity=UserIdentity(JWT, b"x" * 65530)),
], ids=["long AE title", "blank AE title", "even context ID", "no transfer syntax", "no context",
        "129 contexts", "max length over 4 bytes", "long version name", "token over 64 KiB"])
def test_a_value_that_does_not_fit_is_refused_not_cut(bad):
    with pytest.raises(ValueError):
        bad.encode()


# -- A-ASSOCIATE-AC --------------------------------------------------------------------

def result_context(context_id: int, result: int, syntax: str) -> PresentationContext:
    context = PresentationContext()
    context.context_id = context_id
    context.result = result
    context.transfer_syntax = [syntax]
    return context


def pynetdicom_ac(results: list[tuple[int, int, str]], max_length: int | None, version: str, window, roles,
                  extended: dict[str, bytes], identity_response: bytes | None) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title = "PACSKIT"
    primitive.called_ae_title = "ARCHIVE"
    primitive.result = 0
    primitive.result_source = 1
    primitive.presentation_context_definition_results_list = [result_context(*r) for r in results]
    items: list[object] = []
    if max_length is not None:
        maximum = MaximumLengthNotification()
        maximum.maximum_length_received = max_length
        items.append(maximum)
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = IMPLEMENTATION_UID
    items.append(implementation)
    if version:
        name = ImplementationVersionNameNotification()
        name.implementation_version_name = version
        items.append(name)
    if window is not None:
        answer = AsynchronousOperationsWindowNegotiation()
        answer.maximum_number_operations_invoked, answer.maximum_number_operations_performed = window
        items.append(answer)
    for uid, (scu, scp) in roles.items():
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid, role.scu_role, role.scp_role = uid, scu, scp
        items.append(role)
    for uid, information in extended.items():
        item = SOPClassExtendedNegotiation()
        item.sop_class_uid, item.service_class_application_information = uid, information
        items.append(item)
    if identity_response is not None:
        identity = UserIdentityNegotiation()
        identity.server_response = identity_response
        items.append(identity)
    primitive.user_information = items
    return bytes(A_ASSOCIATE_AC(primitive).encode())


def as_pynetdicom_reads_it(pdu: bytes) -> AssociateAc:
    """The AC's fields as pynetdicom's decoder gives them, in pacskit's dataclass."""
    ac = A_ASSOCIATE_AC()
    ac.decode(pdu)
    primitive = ac.to_primitive()
    found: dict[str, object] = {"roles": {}, "extended": {}}
    for item in primitive.user_information:
        if isinstance(item, MaximumLengthNotification):
            found["max_length"] = item.maximum_length_received
        elif isinstance(item, ImplementationClassUIDNotification):
            found["implementation_class_uid"] = str(item.implementation_class_uid)
        elif isinstance(item, ImplementationVersionNameNotification):
            found["implementation_version_name"] = str(item.implementation_version_name)
        elif isinstance(item, AsynchronousOperationsWindowNegotiation):
            found["window"] = (item.maximum_number_operations_invoked, item.maximum_number_operations_performed)
        elif isinstance(item, SCP_SCU_RoleSelectionNegotiation):
            found["roles"][str(item.sop_class_uid)] = (item.scu_role, item.scp_role)  # type: ignore[index]
        elif isinstance(item, SOPClassExtendedNegotiation):
            found["extended"][str(item.sop_class_uid)] = item.service_class_application_information  # type: ignore
        elif isinstance(item, UserIdentityNegotiation):
            found["identity_response"] = item.server_response
    contexts = tuple(ContextResult(int(cx.context_id), int(cx.result),
                                   str(cx.transfer_syntax[0]) if cx.transfer_syntax else None)
                     for cx in primitive.presentation_context_definition_results_list)
    return AssociateAc(ac.protocol_version, str(ac.called_ae_title).strip(), str(ac.calling_ae_title).strip(),
                       str(primitive.application_context_name), contexts, **found)  # type: ignore[arg-type]


RESULT_SETS = [[(1, 0, IMPLICIT)], [(1, 0, EXPLICIT), (3, 3, IMPLICIT), (5, 4, JPEG_LS)],
               [(n, n % 5 and (n % 4) + 1, LONG_UID if n % 3 else IMPLICIT) for n in range(1, 256, 2)]]
ANSWERS = list(itertools.product(RESULT_SETS, [None, 0, 16384, 0xFFFFFFFF], ["", "OFFIS_DCMTK_369"],
                                 [None, (1, 1)], [{}, {CT: (True, False)}, {CT: (False, True), MR: (True, True)}],
                                 [{}, {FIND: b"\x01\x00"}], [None, b"", b"server ticket"]))


@pytest.mark.parametrize("answer", ANSWERS, ids=range(len(ANSWERS)))
def test_an_associate_ac_reads_as_pynetdicom_reads_it(answer):
    pdu = pynetdicom_ac(*answer)
    assert decode_ac(pdu) == as_pynetdicom_reads_it(pdu)


def test_the_ac_table_covers_hundreds_of_answers():
    assert len(ANSWERS) > 400


ROLE_CHOICES = [None, (True, True), (True, False), (False, True), (False, False)]


@pytest.mark.parametrize(("proposed", "granted", "result"),
                         list(itertools.product(ROLE_CHOICES, ROLE_CHOICES, [0, 3])))
def test_roles_are_negotiated_as_pynetdicom_negotiates_them(proposed, granted, result):
    scu, scp = proposed or (None, None)
    ours = [ProposedContext(1, CT, (IMPLICIT,), scu, scp), ProposedContext(3, VERIFICATION, (IMPLICIT,))]
    answer = AssociateAc(1, "", "", None, (ContextResult(1, result, IMPLICIT),), 16384,
                         roles={CT: granted} if granted else {})
    negotiated = ours_as_requestor(answer, ours)
    theirs = []
    for cx in ours:
        context = build_context(cx.abstract_syntax, list(cx.transfer_syntax))
        context.context_id, context.scu_role, context.scp_role = cx.context_id, cx.scu_role, cx.scp_role
        theirs.append(context)
    outcome = negotiate_as_requestor(theirs, [result_context(1, result, IMPLICIT)], {CT: granted} if granted else None)
    assert {cx.context_id: (cx.as_scu, cx.as_scp, str(cx.transfer_syntax)) for cx in negotiated.contexts.values()} \
        == {int(cx.context_id): (cx.as_scu, cx.as_scp, str(cx.transfer_syntax[0])) for cx in outcome if cx.result == 0}
    assert [(cx.context_id, cx.result) for cx in negotiated.refused] \
        == [(cx.context_id, cx.result) for cx in outcome if cx.result != 0]


@pytest.mark.parametrize(("result", "source", "reason"), list(itertools.product([1, 2], [1, 2, 3], range(8))))
def test_an_associate_rj_reads_as_pynetdicom_reads_it(result, source, reason):
    pdu = Rejection(result, source, reason).encode()
    theirs = A_ASSOCIATE_RJ()
    theirs.decode(pdu)
    assert (theirs.result, theirs.source, theirs.reason_diagnostic) == (result, source, reason)
    assert Rejection.decode(pdu) == Rejection(result, source, reason)
