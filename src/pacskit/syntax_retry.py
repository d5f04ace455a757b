"""The instances a C-GET could not bring, asked for again over associations that offer
their transfer syntaxes.

An association holds at most 128 presentation contexts (PS3.8 9.3.2.2), so the first
C-GET of a retrieve cannot offer every storage SOP class with every transfer syntax
(:mod:`pacskit.net.contexts`), and a peer that sends instances as it stores them fails
those it holds in a syntax not offered; its final response lists them (Failed SOP
Instance UID List, PS3.4 C.4.3.1.3.1). An IMAGE-level C-FIND locates each one: its
series, and when the peer returns them its SOP Class UID and Available Transfer Syntax
UID (PS3.4 C.6.1.1.5). They are then asked for again at IMAGE level, over associations
with one context per (SOP class, transfer syntax). A peer that picks the context by the
instance's syntax sends them in the first such round; one that sends every instance of a
class over the first context it accepted for that class (DCMTK's dcmqrscp) sends only
those in the syntax offered first, so each round leads with the next candidate syntax,
until none is left to try. A round with an unknown SOP class offers every storage class,
with its lead syntax only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pydicom import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom.presentation import PresentationContext

from pacskit.errors import DimseError, NetworkError, NoStorageRole, ServiceNotSupported
from pacskit.net.contexts import LOSSLESS, LOSSY, single_syntax_contexts, storage_sop_classes
from pacskit.net.find import find_session
from pacskit.net.retrieve import InstanceHandler, get_session
from pacskit.nodes import Node
from pacskit.settings import Settings

RETRY_ORDER: list[str] = [*LOSSLESS, *LOSSY, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
                          ImplicitVRLittleEndian, ExplicitVRLittleEndian]
"""The lead syntaxes of the rounds, compressed ones first: a peer that cannot send an
instance as stored fails it rather than compress it, while it may well decompress it."""
UPPER_KEYS = {"patient": ["PatientID", "StudyInstanceUID", "SeriesInstanceUID"],
              "study": ["StudyInstanceUID", "SeriesInstanceUID"]}
UIDS_PER_REQUEST = 100
SUCCESS = 0x0000
MOVE_HINT = "--method move may bring them"


@dataclass
class Missing:
    """An instance the first C-GET did not bring, as the IMAGE-level C-FIND located it."""

    uid: str
    keys: dict[str, str]
    sop_class: str | None
    syntaxes: list[str]

    @property
    def candidates(self) -> list[str]:
        """The syntaxes to offer for it: those the peer says it has, else every one."""
        return self.syntaxes or RETRY_ORDER


@dataclass
class RetryOutcome:
    """What asking again brought.

    Attributes:
        recovered: the instances that arrived and were kept.
        refused: those that arrived but that we could not keep (a local failure).
        failed: those still missing.
        reason: why the missing ones are missing, for the user.
        requests: the C-GET requests sent.
    """

    recovered: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    reason: str = ""
    requests: int = 0


def retrieve_again(settings: Settings, node: Node, model: str,
                   failures: Sequence[tuple[Dataset, list[str]]],
                   on_instance: InstanceHandler) -> RetryOutcome:
    """Ask ``node`` again for the instances that failed in each (request identifier,
    Failed SOP Instance UID List) of ``failures``, handing what arrives to
    ``on_instance``. Failures along the way are the outcome's, never raised: the first
    C-GET's result stands."""
    wanted = wanted_of(failures)
    outcome = RetryOutcome()
    try:
        missing = locate(settings, node, model, failures)
    except (NetworkError, DimseError) as exc:
        return unlocated_outcome(node, wanted, exc)
    try:
        for contexts, targets in rounds(list(missing.values()), outcome):
            _ask(settings, node, model, contexts, targets, on_instance, outcome)
    except (NetworkError, DimseError) as exc:
        outcome.reason = f"asking {node.label} again failed: {exc}"
    return concluded(outcome, node, wanted, missing)


def wanted_of(failures: Sequence[tuple[Dataset, list[str]]]) -> list[str]:
    """The failed SOP Instance UIDs, each once, in order."""
    return list(dict.fromkeys(uid for _, uids in failures for uid in uids))


def unlocated_outcome(node: Node, wanted: list[str], exc: Exception) -> RetryOutcome:
    """The outcome when the C-FIND that locates the failed instances failed."""
    return RetryOutcome(failed=wanted, reason=f"{node.label} could not send them over C-GET, and an "
                                              f"IMAGE-level C-FIND to locate them failed ({exc}); {MOVE_HINT}")


def concluded(outcome: RetryOutcome, node: Node, wanted: list[str], missing: dict[str, Missing]) -> RetryOutcome:
    """``outcome`` with what is still missing, and why."""
    unlocated = [uid for uid in wanted if uid not in missing]
    outcome.failed = [uid for uid in wanted if uid not in outcome.recovered and uid not in outcome.refused]
    if outcome.failed and not outcome.reason:
        outcome.reason = _reason(node, [missing[u] for u in outcome.failed if u in missing], unlocated)
    return outcome


def locate(settings: Settings, node: Node, model: str,
           failures: Sequence[tuple[Dataset, list[str]]]) -> dict[str, Missing]:
    """The failed instances an IMAGE-level C-FIND finds, by SOP Instance UID, each with
    the unique keys above it (taken from the match, else from its request).

    Raises:
        NetworkError, DimseError: the C-FIND failed.
    """
    found: dict[str, Missing] = {}
    with find_session(settings, node, model) as session:
        for query, chunk, identifier in locating_queries(model, failures):
            for match in session.find(query):
                take_located(found, model, match, chunk, identifier)
    return found


def locating_queries(model: str, failures: Sequence[tuple[Dataset, list[str]]]
                     ) -> Iterator[tuple[Dataset, list[str], Dataset]]:
    """The IMAGE-level C-FIND identifiers that locate the failed instances, each with its
    SOP Instance UIDs and the request identifier they failed in."""
    for identifier, uids in failures:
        for chunk in _chunks(uids, UIDS_PER_REQUEST):
            query = Dataset()
            query.QueryRetrieveLevel = "IMAGE"
            for key in UPPER_KEYS[model]:
                given = _values(identifier.get(key))
                setattr(query, key, given if len(given) > 1 else "".join(given))
            query.SOPInstanceUID = chunk if len(chunk) > 1 else chunk[0]
            query.SOPClassUID = ""
            query.AvailableTransferSyntaxUID = ""
            yield query, chunk, identifier


def take_located(found: dict[str, Missing], model: str, match: Dataset, chunk: list[str],
                 identifier: Dataset) -> None:
    """Add the instance of one locating match to ``found``, if it is one asked for and
    its keys are known."""
    uid = _text(match.get("SOPInstanceUID"))
    if uid not in chunk:
        return
    located = {k: _text(match.get(k)) or _single(identifier.get(k)) for k in UPPER_KEYS[model]}
    if all(located.values()):
        found[uid] = Missing(uid, located, _text(match.get("SOPClassUID")) or None,
                             _values(match.get("AvailableTransferSyntaxUID")))


def rounds(missing: list[Missing], outcome: RetryOutcome) -> Iterator[tuple[list[PresentationContext], list[Missing]]]:
    """The associations to ask on (their storage contexts) and the instances to ask for
    on each, round by round, each round leading with the next syntax; lazily, so that
    what ``outcome`` got by then is not asked for again."""
    leads = list(dict.fromkeys(s for s in RETRY_ORDER if any(s in m.candidates for m in missing)))
    leads += list(dict.fromkeys(s for m in missing for s in m.candidates if s not in leads))
    for lead in leads:
        pending = [m for m in missing if lead in m.candidates and not _done(m, outcome)]
        for contexts in single_syntax_contexts(_proposals(pending, lead)):
            offered = {str(cx.abstract_syntax) for cx in contexts}
            targets = [m for m in pending if not _done(m, outcome)
                       and (m.sop_class is None or m.sop_class in offered)]
            if targets:
                yield contexts, targets


def _proposals(pending: list[Missing], lead: str) -> list[tuple[str, str]]:
    """For each known SOP class, ``lead`` first and then its other candidates; for an
    unknown one, every storage class with ``lead`` alone."""
    proposals: list[tuple[str, str]] = []
    for m in pending:
        if m.sop_class is not None:
            proposals += [(m.sop_class, lead)] + [(m.sop_class, s) for s in m.candidates if s != lead]
    if any(m.sop_class is None for m in pending):
        proposals += [(str(uid), lead) for uid in storage_sop_classes()]
    return proposals


def _ask(settings: Settings, node: Node, model: str, contexts: list[PresentationContext], targets: list[Missing],
         on_instance: InstanceHandler, outcome: RetryOutcome) -> None:
    try:
        with get_session(settings, node, model, on_instance, storage=contexts) as session:
            session.answered = {}
            for identifier in asking_identifiers(targets, outcome):
                session.c_get(identifier)
            record_answers(session.answered, outcome)
    except (NoStorageRole, ServiceNotSupported):
        return


def asking_identifiers(targets: list[Missing], outcome: RetryOutcome) -> Iterator[Dataset]:
    """The C-GET identifiers that ask for ``targets``, by series, each counted in
    ``outcome.requests``."""
    for keys, uids in _by_series(targets):
        for chunk in _chunks(uids, UIDS_PER_REQUEST):
            outcome.requests += 1
            yield _identifier(keys, chunk)


def record_answers(answered: dict[str, int], outcome: RetryOutcome) -> None:
    """Each sub-operation's answer (our C-STORE status) as recovered or refused."""
    for uid, status in answered.items():
        (outcome.recovered if status == SUCCESS else outcome.refused).add(uid)


def _done(m: Missing, outcome: RetryOutcome) -> bool:
    return m.uid in outcome.recovered or m.uid in outcome.refused


def _by_series(targets: list[Missing]) -> Iterator[tuple[dict[str, str], list[str]]]:
    groups: dict[tuple[str, ...], list[Missing]] = {}
    for m in targets:
        groups.setdefault(tuple(m.keys.values()), []).append(m)
    for group in groups.values():
        yield group[0].keys, [m.uid for m in group]


def _identifier(keys: dict[str, str], uids: list[str]) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    for key, value in keys.items():
        setattr(identifier, key, value)
    identifier.SOPInstanceUID = uids if len(uids) > 1 else uids[0]
    return identifier


def _reason(node: Node, located: list[Missing], unlocated: list[str]) -> str:
    if not located:
        return (f"{node.label} could not send them over C-GET, and an IMAGE-level C-FIND did not "
                f"find them to ask again; {MOVE_HINT}")
    syntaxes = list(dict.fromkeys(s for m in located for s in m.syntaxes))
    if syntaxes:
        offered = "offering " + ", ".join(UID(s).name for s in syntaxes)
    else:
        offered = "offering every transfer syntax for them"
    return f"{node.label} could not send them over C-GET, also asked again {offered}; {MOVE_HINT}"


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _text(value: object) -> str:
    return str(value or "").strip()


def _single(value: object) -> str:
    values = _values(value)
    return values[0] if len(values) == 1 else ""


def _values(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split("\\") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]  # type: ignore[attr-defined]
