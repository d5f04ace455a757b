"""Result models handed back by the client (pure data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field, field_serializer
from pydicom import Dataset

from pacskit.echo_result import EchoResult as EchoResult  # re-exported
from pacskit.errors import DimseFailure, InstancesNotReceived, PartialFailure, RetrieveFailed
from pacskit.query import Level


class AnswerCheck(BaseModel):
    """How a peer's answers to a query compared with the query's matching keys.

    A C-FIND SCP that does not support matching on an optional key ignores it and returns
    the key as a return key — with its value, zero length, or not at all (PS3.4
    C.2.2.1.3; Pending status 0xFF01, Table C.4-1); a QIDO-RS server ignores the
    parameters it does not support (PS3.18 8.3). pacskit checks every answer with the
    PS3.4 C.2.2.2 rules it applies to the archive (:func:`pacskit.answers.check_answer`):
    an answer whose value fails a key is dropped, one that returns a key empty or not at
    all cannot be checked and is kept, counted as unverified. An empty ModalitiesInStudy
    is checked against the Modality of the study's series, asked for at the series level.

    Attributes:
        level: the level of the answers.
        answers: answers the peer sent.
        dropped: answers dropped: a value the peer returned fails a matching key.
        unverified: answers kept though a matching key could not be checked in them.
        ignored: matching key → answers dropped for failing it.
        unreturned: matching key → answers that returned it empty or not at all.
        checked_by_series: answers whose ModalitiesInStudy was checked by a series-level
            query.
        above: the check of the level above, when the query ran in steps
            (:mod:`pacskit.finder`).
    """

    level: Level
    answers: int = 0
    dropped: int = 0
    unverified: int = 0
    ignored: dict[str, int] = {}
    unreturned: dict[str, int] = {}
    checked_by_series: int = 0
    above: AnswerCheck | None = None

    def messages(self) -> list[str]:
        """One line per finding, for people: what was dropped, what is unverified
        (nothing when every answer matched), from the top level down."""
        lines = self.above.messages() if self.above is not None else []
        noun = f"{self.level.value.lower()} answer" + ("" if self.answers == 1 else "s")
        if self.dropped:
            lines.append(f"{self.dropped} of {self.answers} {noun} dropped: "
                         f"the PACS ignored {_listed(self.ignored)}")
        if self.unverified:
            lines.append(f"{self.unverified} of {self.answers} {noun} kept unverified: "
                         f"the PACS returned no {_listed(self.unreturned)} to check "
                         f"{'it' if self.unverified == 1 else 'them'} against")
        return lines


def _listed(counts: dict[str, int]) -> str:
    names = sorted(counts)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class Answers(Iterator[Dataset]):
    """The matches of a query as they arrive, and ``check``: how the peer's answers
    compared with the query (:class:`AnswerCheck`), complete once the iteration ends."""

    def __init__(self, matches: Iterator[Dataset], check: AnswerCheck) -> None:
        self._matches = matches
        self.check = check

    def __iter__(self) -> Answers:
        return self

    def __next__(self) -> Dataset:
        return next(self._matches)

    def close(self) -> None:
        """Stop early and release what the iteration holds (the association)."""
        close = getattr(self._matches, "close", None)
        if close is not None:
            close()


class Matches(list[Dataset]):
    """All the matches of a query, and ``check``: how the peer's answers compared with it
    (:class:`AnswerCheck`)."""

    def __init__(self, answers: Answers) -> None:
        super().__init__(answers)
        self.check = answers.check


class RetrieveProgress(BaseModel):
    """Where a retrieve stands, handed to progress callbacks.

    Attributes:
        received: instances received so far (written, kept in memory or skipped).
        failed: sub-operations that failed so far.
        total: instances expected, when the peer or a preceding C-FIND told us.
        bytes: bytes received.
    """

    received: int = 0
    failed: int = 0
    total: int | None = None
    bytes: int = 0


class MoveProgress(BaseModel):
    """Where a C-MOVE stands, from its pending responses (PS3.4 C.4.2.1.6), handed to
    progress callbacks.

    Attributes:
        done: sub-operations completed, failed or with a warning so far, over every request.
        failed: of those, the failed ones.
        total: sub-operations of every request so far, once the peer has told them.
    """

    done: int = 0
    failed: int = 0
    total: int | None = None


class InstanceFailure(BaseModel):
    """One instance that could not be retrieved or stored, and why."""

    sop_instance_uid: str
    reason: str


class MoveDelivery(BaseModel):
    """Where the peer of a C-MOVE to ourselves had to send the instances: the Move
    Destination (our AE title) and the host and port it must be registered with there.

    Attributes:
        peer: the node the C-MOVE went to.
        ae_title, host, port: our AE title, and the address our Storage SCP was reached
            at (or listened on, or the peer saw us from when it never connected).
        connections: associations the peer opened to our Storage SCP.
    """

    model_config = ConfigDict(frozen=True)

    peer: str
    ae_title: str
    host: str
    port: int
    connections: int


Outcome = Literal["success", "warning", "partial", "failure"]
"""How a retrieve or move ended, from its counts: ``success`` (nothing failed, no
warning), ``warning`` (nothing failed, some sub-operations with a warning status,
PS3.4 C.4.2.3.1), ``partial`` (some failed, others did not), ``failure`` (every one
failed)."""


def outcome(succeeded: int, failed: int, warning: int) -> Outcome:
    """The :data:`Outcome` of counts: ``succeeded`` and ``warning`` sub-operations
    stored, ``failed`` not."""
    if failed:
        return "partial" if succeeded + warning else "failure"
    return "warning" if warning else "success"


class RetrieveResult(BaseModel):
    """The outcome of a C-GET or C-MOVE retrieve (PS3.4 C.4.2.3, C.4.3.3), or of a
    WADO-RS one (PS3.18 10.4).

    ``completed``, ``failed``, ``warning`` and ``remaining`` are the peer's sub-operation
    counts; the rest is what pacskit did with what it received. ``model_dump_json()``
    gives the instances retrieved to memory as their SOP Instance UIDs.

    Attributes:
        method: ``get`` or ``move``.
        requests: how many C-GET/C-MOVE requests were sent.
        completed, failed, warning: sub-operation counts summed over the requests.
        remaining: sub-operations the final responses left remaining (a cancelled or
            failed request).
        failed_instances: SOP Instance UIDs the peer reported as failed.
        recovered: of ``completed``, instances a first C-GET did not bring that came on
            asking again with their transfer syntaxes offered.
        failure_reason: why the peer's failed instances failed, when pacskit knows more
            than the peer's log would say.
        local_failures: instances received but not stored (disk full, bad data...).
        not_received: C-MOVE to ourselves: sub-operations the peer reported completed
            (or with a warning) whose instances never reached us; ``delivery`` says
            where they had to go.
        written: files written; ``skipped``: already present and kept.
        bytes: bytes received.
        seconds: wall time.
        files: paths of the files written or already present.
        instances: the datasets, when retrieved to memory.
        check: how the answers of the search that chose what to retrieve compared with
            the query (None: the query named what to retrieve by its unique keys, there
            was no search).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    method: str
    requests: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int = 0
    failed_instances: list[str] = []
    recovered: int = 0
    failure_reason: str = ""
    local_failures: list[InstanceFailure] = []
    not_received: int = 0
    delivery: MoveDelivery | None = None
    written: int = 0
    skipped: int = 0
    bytes: int = 0
    seconds: float = 0.0
    files: list[Path] = []
    instances: list[Dataset] = []
    check: AnswerCheck | None = None

    @property
    def received(self) -> int:
        """Instances received and kept (written, skipped as present, or in memory)."""
        return self.written + self.skipped + len(self.instances)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Outcome:
        """How the retrieve ended (:data:`Outcome`), local failures and instances that
        never arrived counted as failed."""
        failed = max(self.failed, len(self.local_failures)) + self.not_received
        return outcome(max(0, self.completed - self.not_received), failed, self.warning)

    @field_serializer("instances", when_used="json")
    def _instance_uids(self, instances: list[Dataset]) -> list[str]:
        return [str(ds.get("SOPInstanceUID", "")) for ds in instances]

    def raise_for_status(self) -> RetrieveResult:
        """Raise if the retrieve did not fully succeed; return ``self`` otherwise.

        Raises:
            InstancesNotReceived: instances the peer reported sent did not arrive.
            RetrieveFailed: sub-operations were attempted and none succeeded.
            PartialFailure: some sub-operations or local writes failed.
        """
        if self.not_received:
            raise InstancesNotReceived(self._not_received_message())
        failures = max(self.failed, len(self.local_failures))
        if not failures:
            return self
        reason = (self.local_failures[0].reason if self.local_failures
                  else self.failure_reason or "see the peer's log")
        if self.completed + self.warning == 0 and self.received == 0:
            raise RetrieveFailed(f"all {failures} sub-operations failed ({reason})")
        total = self.completed + self.warning + self.failed
        raise PartialFailure(f"{failures} of {max(total, failures)} instances failed ({reason})")

    def _not_received_message(self) -> str:
        reported = self.completed + self.warning
        missing = f"{self.not_received} instance{'s' if self.not_received > 1 else ''}"
        where = self.delivery
        if where is None:
            return f"{missing} of {reported} reported sent did not arrive"
        came = reported - self.not_received
        detail = f"{came} of {reported} came" if came > 0 else f"none of {reported} came"
        if where.connections:
            detail += f", over {where.connections} association{'s' if where.connections > 1 else ''}"
        else:
            detail += "; it never connected to us"
        return (f"{missing} reported sent by {where.peer} did not arrive ({detail}): check that it "
                f"has AE title {where.ae_title!r} at host {where.host} port {where.port}")


class MoveResult(BaseModel):
    """The outcome of a C-MOVE to a third party (PS3.4 C.4.2.3): the peer's
    sub-operation counts, and ``check`` as in :class:`RetrieveResult`."""

    destination: str
    requests: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int = 0
    failed_instances: list[str] = []
    seconds: float = 0.0
    check: AnswerCheck | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Outcome:
        """How the move ended (:data:`Outcome`)."""
        return outcome(self.completed, self.failed, self.warning)

    def raise_for_status(self) -> MoveResult:
        """Raise if the move did not fully succeed; return ``self`` otherwise.

        Raises:
            RetrieveFailed: every sub-operation failed.
            PartialFailure: some failed.
        """
        if self.failed and self.completed + self.warning == 0:
            raise RetrieveFailed(f"all {self.failed} sub-operations of the move to {self.destination} failed")
        if self.failed:
            raise PartialFailure(f"{self.failed} of {self.completed + self.warning + self.failed} instances failed to move to {self.destination}")
        return self


class StoreProgress(BaseModel):
    """Where a store stands, handed to progress callbacks."""

    done: int = 0
    failed: int = 0
    total: int = 0
    bytes: int = 0


class FileFailure(BaseModel):
    """One file that was not stored, and why."""

    path: Path
    reason: str
    status: int | None = None


class StoreResult(BaseModel):
    """The outcome of sending files with C-STORE.

    Attributes:
        sent: files the peer stored (success or warning status).
        warning: of those, files stored with a warning status.
        converted: of those, files decoded and converted to a syntax the peer accepts.
        failed: files not stored, with the reason in ``failures``.
        not_dicom: files skipped because they are not DICOM Part 10 files.
        filtered_out: DICOM files skipped by the patient/study/series filter.
        bytes: size of the files stored.
        seconds: wall time.
    """

    sent: int = 0
    warning: int = 0
    converted: int = 0
    failed: int = 0
    not_dicom: int = 0
    filtered_out: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: list[FileFailure] = []

    def raise_for_status(self) -> StoreResult:
        """Raise if some files were not stored; return ``self`` otherwise.

        Raises:
            PartialFailure: some files failed, others were stored.
            DimseFailure: every file failed (with the first failure's status and reason).
        """
        if not self.failed:
            return self
        first = self.failures[0]
        if self.sent == 0:
            raise DimseFailure(f"no file was stored: {first.path.name}: {first.reason}",
                               status=first.status or 0)
        raise PartialFailure(f"{self.failed} of {self.sent + self.failed} files were not stored "
                             f"(first: {first.path.name}: {first.reason})")
