"""Storage service, SCU side (PS3.4 Annex B): sending files with C-STORE.

Files are sent as they are on disk — the dataset bytes streamed from the file, never
decoded — over a presentation context with the file's own transfer syntax. When the peer
does not accept that syntax, an uncompressed context is proposed as well, and the file is
decoded and converted (decompressed if pydicom can) before it is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from pydicom import dcmread
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

from pacskit.errors import DimseFailure, NetworkError, ServiceNotSupported
from pacskit.net.association import associate
from pacskit.net.contexts import MAX_CONTEXTS
from pacskit.net.status import Outcome, check_response, outcome_of
from pacskit.nodes import Node
from pacskit.scan import DicomFile
from pacskit.settings import Settings

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one file: ``status`` is None when it was not sent at all."""

    file: DicomFile
    status: int | None
    reason: str = ""
    converted: bool = False

    @property
    def outcome(self) -> Outcome:
        return Outcome.FAILURE if self.status is None else outcome_of(self.status)


OutcomeHandler = Callable[[SendOutcome], None]


def contexts_for(files: Sequence[DicomFile]) -> list[PresentationContext]:
    """One context per (SOP class, transfer syntax) the files use, and an uncompressed
    one per SOP class for files whose syntax the peer may refuse."""
    contexts: dict[tuple[str, tuple[str, ...]], PresentationContext] = {}
    for item in files:
        syntax = UID(item.transfer_syntax)
        if syntax in UNCOMPRESSED:
            key = (item.sop_class_uid, UNCOMPRESSED)
            contexts.setdefault(key, build_context(item.sop_class_uid, list(UNCOMPRESSED)))
            continue
        contexts.setdefault((item.sop_class_uid, (syntax,)), build_context(item.sop_class_uid, syntax))
        contexts.setdefault((item.sop_class_uid, UNCOMPRESSED),
                            build_context(item.sop_class_uid, list(UNCOMPRESSED)))
    return list(contexts.values())


def batches(files: Sequence[DicomFile]) -> Iterator[list[DicomFile]]:
    """The files in groups whose contexts fit in one association (128 at most)."""
    by_class: dict[str, list[DicomFile]] = {}
    for item in files:
        by_class.setdefault(item.sop_class_uid, []).append(item)
    batch: list[DicomFile] = []
    for group in by_class.values():
        if batch and len(contexts_for(batch + group)) > MAX_CONTEXTS:
            yield batch
            batch = []
        if len(contexts_for(group)) > MAX_CONTEXTS:
            syntaxes = sorted({f.transfer_syntax for f in group})
            for start in range(0, len(syntaxes), MAX_CONTEXTS - 1):
                chunk = set(islice(syntaxes, start, start + MAX_CONTEXTS - 1))
                yield [f for f in group if f.transfer_syntax in chunk]
            continue
        batch.extend(group)
    if batch:
        yield batch


def send_files(settings: Settings, node: Node, files: Sequence[DicomFile],
               on_outcome: OutcomeHandler) -> None:
    """C-STORE ``files`` to ``node``, over as few associations as the context limit allows.

    Each file's outcome goes to ``on_outcome``; a failure status is that file's failure
    and the others are still sent.

    Raises:
        NetworkError: an association could not be opened, or was lost (the files not yet
            sent are reported with no status first).
    """
    for batch in batches(files):
        sent = 0
        try:
            with associate(settings, node, contexts_for(batch)) as assoc:
                if not assoc.accepted_contexts:
                    raise ServiceNotSupported(
                        f"{node.label} accepted none of the storage SOP classes offered"
                    )
                accepted = {(cx.abstract_syntax, cx.transfer_syntax[0])
                            for cx in assoc.accepted_contexts}
                for item in batch:
                    on_outcome(_send_one(assoc, accepted, node, item))
                    sent += 1
        except (NetworkError, ServiceNotSupported) as exc:
            for item in batch[sent:]:
                on_outcome(SendOutcome(item, None, str(exc)))
            raise


def _send_one(assoc: Association, accepted: set[tuple[str, str]], node: Node,
              item: DicomFile) -> SendOutcome:
    if (item.sop_class_uid, item.transfer_syntax) in accepted:
        payload: object = item.path
        converted = False
    else:
        targets = [ts for ts in UNCOMPRESSED if (item.sop_class_uid, ts) in accepted]
        if not targets:
            return SendOutcome(item, None, f"{node.label} does not accept SOP class "
                                           f"{UID(item.sop_class_uid).name}")
        try:
            payload = _converted(item)
        except Exception as exc:  # noqa: BLE001 - any codec failure means "cannot convert"
            return SendOutcome(item, None, f"{node.label} does not accept "
                                           f"{UID(item.transfer_syntax).name} and pacskit "
                                           f"cannot decompress it ({exc})")
        converted = True
    try:
        response = assoc.send_c_store(payload)  # type: ignore[arg-type]
    except (ValueError, AttributeError) as exc:
        return SendOutcome(item, None, f"cannot encode: {exc}")
    try:
        status = check_response(assoc, response, "C-STORE", node)
    except DimseFailure as exc:
        return SendOutcome(item, exc.status, exc.message, converted)
    return SendOutcome(item, status, "", converted)


def _converted(item: DicomFile) -> object:
    dataset = dcmread(item.path)
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        dataset.decompress()
    return dataset
