"""C-GET of instances in every transfer syntax from peers that send them as they store
them: the first association cannot offer every (SOP class, syntax) pair within 128
presentation contexts, and what it could not bring is asked for again with their
syntaxes offered — from a scripted archive that never transcodes (byte for byte), and
from DCMTK dcmqrscp, which sends every instance of a class over the first context it
accepted for it."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pytest
from clirunner import assert_one_line_error, run_cli
from pydicom import Dataset, dcmread
from pydicom.uid import UID
from pynetdicom.dsutils import decode, encode
from scripted_peer import Conversation, ScriptedPeer

from pacskit import Client, Node, Settings
from pacskit.net.commands import (
    C_FIND_RQ,
    C_GET_RQ,
    C_GET_RSP,
    COMMAND_FIELD,
    MESSAGE_ID,
    STATUS,
    c_find_rsp,
    c_store_rq,
    retrieve_rsp,
)
from pacskit.net.contexts import retrieve_storage_contexts
from pacskit.query import Query
from pacskit.scan import DicomFile, read_file
from pacskit.testing.peers import DcmQrSCP
from pacskit.testing.samples import pydicom_samples

NAMES_KEPT = Settings(allow_patient_names=True)


def dataset_bytes(path: Path) -> bytes:
    return path.read_bytes()[read_file(path).dataset_offset:]


def as_sent(path: Path) -> bytes:
    """The dataset as a peer sends it: an odd deflated stream padded (PS3.5 A.5)."""
    data = dataset_bytes(path)
    return data + b"\0" if len(data) % 2 else data


def offered_first(item: DicomFile) -> bool:
    """Whether the first C-GET association brings this instance from the scripted
    archive, which accepts each context with the first syntax it lists."""
    return any(cx.abstract_syntax == item.sop_class_uid and cx.transfer_syntax[0] == item.transfer_syntax
               for cx in retrieve_storage_contexts())


class StrictArchive:
    """A scripted Query/Retrieve SCP holding ``files``: C-FIND at IMAGE level (with the
    SOP Class UID and Available Transfer Syntax UID when told to), and C-GET that sends
    each instance byte for byte over a context of its own syntax — or fails it, with no
    transcoding, as many archives do. ``unsendable`` instances always fail."""

    def __init__(self, files: list[Path], *, sop_class: bool = True, syntax: bool = False,
                 unsendable: tuple[str, ...] = ()) -> None:
        self.files = [read_file(p) for p in files]
        self.sop_class = sop_class
        self.syntax = syntax
        self.unsendable = set(unsendable)
        self.headers = {f.sop_instance_uid: dcmread(f.path, stop_before_pixels=True) for f in self.files}
        self.gets: list[list[str]] = []

    def __call__(self, conversation: Conversation) -> None:
        for message in conversation.messages():
            command = message.us(COMMAND_FIELD)
            abstract, syntax = conversation.contexts[message.context_id]
            query = decode(BytesIO(message.data or b""), *_encoding(syntax))
            if command == C_FIND_RQ:
                self._find(conversation, message, abstract, syntax, query)
            elif command == C_GET_RQ:
                self._get(conversation, message, abstract, syntax, query)

    def _matches(self, query: Dataset) -> list[DicomFile]:
        def wanted(keyword: str, value: str) -> bool:
            given = query.get(keyword)
            if given in (None, ""):
                return True
            return value in ([str(v) for v in given] if not isinstance(given, str) else [given])

        return [f for f in self.files
                if all(wanted(k, str(self.headers[f.sop_instance_uid].get(k, "")))
                       for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))]

    def _find(self, conversation, message, abstract, syntax, query) -> None:
        message_id = message.us(MESSAGE_ID) or 0
        for item in self._matches(query):
            header = self.headers[item.sop_instance_uid]
            match = Dataset()
            match.QueryRetrieveLevel = "IMAGE"
            match.StudyInstanceUID = header.StudyInstanceUID
            match.SeriesInstanceUID = header.SeriesInstanceUID
            match.SOPInstanceUID = item.sop_instance_uid
            if self.sop_class:
                match.SOPClassUID = item.sop_class_uid
            if self.syntax:
                match.AvailableTransferSyntaxUID = item.transfer_syntax
            conversation.channel.send(message.context_id, c_find_rsp(message_id, abstract, 0xFF00,
                                                                     has_identifier=True),
                                      encode(match, *_encoding(syntax)))
        conversation.channel.send(message.context_id, c_find_rsp(message_id, abstract, 0x0000,
                                                                 has_identifier=False))

    def _get(self, conversation, message, abstract, syntax, query) -> None:
        matched = self._matches(query)
        self.gets.append([f.sop_instance_uid for f in matched])
        completed, failed = 0, []
        for number, item in enumerate(matched, 1):
            context = conversation.context_for(item.sop_class_uid, item.transfer_syntax)
            if context is None or item.sop_instance_uid in self.unsendable:
                failed.append(item.sop_instance_uid)
                continue
            conversation.channel.send(context, c_store_rq(number, item.sop_class_uid, item.sop_instance_uid),
                                      as_sent(item.path))
            response = conversation.receive()
            if response.us(STATUS) == 0x0000:
                completed += 1
            else:
                failed.append(item.sop_instance_uid)
        status = 0x0000 if not failed else 0xA702 if not completed else 0xB000
        identifier = None
        if failed:
            identifier = Dataset()
            identifier.FailedSOPInstanceUIDList = failed
        conversation.channel.send(message.context_id, retrieve_rsp(
            C_GET_RSP, message.us(MESSAGE_ID) or 0, abstract, status, (None, completed, len(failed), 0),
            has_identifier=identifier is not None),
            encode(identifier, *_encoding(syntax)) if identifier is not None else None)


def _encoding(syntax: str) -> tuple[bool, bool, bool]:
    uid = UID(syntax)
    return uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated


def studies_of(paths: list[Path]) -> str:
    return "\\".join(sorted({str(dcmread(p, stop_before_pixels=True).StudyInstanceUID) for p in paths}))


@pytest.mark.parametrize("sop_class", [True, False], ids=["class-from-c-find", "class-unknown"])
def test_every_pydicom_sample_comes_back_byte_for_byte_from_an_archive_that_never_transcodes(tmp_path, sop_class):
    samples = pydicom_samples()
    first_miss = [p for p in samples if not offered_first(read_file(p))]
    assert first_miss, "some samples must need a syntax the first association does not offer"
    archive = StrictArchive(samples, sop_class=sop_class)
    with ScriptedPeer("STRICT", archive) as peer:
        node = Node(ae_title="STRICT", host=peer.host, port=peer.port)
        result = Client(NAMES_KEPT).get(node, Query.build("study", study_uid=studies_of(samples)), tmp_path)
    assert not peer.errors, peer.errors
    result.raise_for_status()
    assert (result.completed, result.failed, result.recovered) == (len(samples), 0, len(first_miss))
    received = {read_file(p).sop_instance_uid: p for p in result.files}
    for path in samples:
        got = received[read_file(path).sop_instance_uid]
        assert read_file(got).transfer_syntax == read_file(path).transfer_syntax, path.name
        assert dataset_bytes(got) == as_sent(path), path.name
    asked_again = {uid for uids in archive.gets[1:] for uid in uids}
    assert asked_again == {read_file(p).sop_instance_uid for p in first_miss}


def test_an_instance_the_archive_never_sends_names_its_syntax_and_suggests_move(tmp_path):
    samples = pydicom_samples()
    lossy = next(p for p in samples if p.name == "JPEG-lossy.dcm")
    unsendable = read_file(lossy).sop_instance_uid
    archive = StrictArchive(samples, syntax=True, unsendable=(unsendable,))
    with ScriptedPeer("STRICT", archive) as peer:
        result = run_cli("--aet", "PACSKIT", "get", peer.address, "--study-uid", studies_of(samples),
                         "-o", tmp_path, "-f", "json")
    assert_one_line_error(result, 26, f"1 of {len(samples)} instances failed (STRICT@127.0.0.1:{peer.port} could "
                                      "not send them over C-GET, also asked again offering JPEG Extended "
                                      "(Process 2 and 4); --method move may bring them)")
    summary = json.loads(result.stdout)
    assert (summary["completed"], summary["failed"], summary["failed_instances"]) == (
        len(samples) - 1, 1, [unsendable])
    assert len(list(tmp_path.rglob("*.dcm"))) == len(samples) - 1


def test_dcmqrscp_sends_the_compressed_samples_in_their_own_syntax(tmp_path):
    """dcmqrscp sends every instance of a class over the first context it accepted for
    the class, converting between uncompressed syntaxes and failing compressed ones: each
    round of asking again leads with another syntax. (It re-encodes what it sends, so its
    bytes are not the stored ones: the pixel data is compared.)"""
    samples = pydicom_samples()
    with DcmQrSCP(tmp_path / "qr", all_syntaxes=True) as peer:
        node = Node(ae_title=peer.ae_title, host=peer.host, port=peer.port)
        Client(NAMES_KEPT).store(samples, node).raise_for_status()
        result = Client(NAMES_KEPT).get(node, Query.build("study", study_uid=studies_of(samples)),
                                        tmp_path / "out")
    result.raise_for_status()
    compressed = [p for p in samples if UID(read_file(p).transfer_syntax).is_compressed]
    assert (result.completed, result.failed) == (len(samples), 0)
    assert result.recovered == len(compressed)
    received = {read_file(p).sop_instance_uid: p for p in result.files}
    for path in samples:
        original, got = dcmread(path), dcmread(received[read_file(path).sop_instance_uid])
        if path in compressed:
            assert got.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID, path.name
            assert got.PixelData == original.PixelData, path.name
        elif "PixelData" in original:
            assert (got.pixel_array == original.pixel_array).all(), path.name
        for keyword in ("SOPClassUID", "StudyDate", "SpecificCharacterSet", "PatientName"):
            assert got.get(keyword) == original.get(keyword), (path.name, keyword)


def test_the_asyncio_driver_asks_again_on_the_loop_as_the_blocking_one(tmp_path):
    """AsyncClient's C-GET from dcmqrscp: the compressed samples are asked for again on
    the event loop (no thread at any progress call), with the same outcome as Client's."""
    import asyncio
    import threading

    from pacskit import AsyncClient

    samples = pydicom_samples()
    with DcmQrSCP(tmp_path / "qr", all_syntaxes=True) as peer:
        node = Node(ae_title=peer.ae_title, host=peer.host, port=peer.port)
        Client(NAMES_KEPT).store(samples, node).raise_for_status()
        query = Query.build("study", study_uid=studies_of(samples))
        before = set(threading.enumerate())
        seen: list[set[threading.Thread]] = []
        on_loop = asyncio.run(AsyncClient(NAMES_KEPT).get(
            node, query, tmp_path / "async", timeout=120, progress=lambda state: seen.append(set(threading.enumerate()))))
        blocking = Client(NAMES_KEPT).get(node, query, tmp_path / "sync")
    assert seen and all(threads == before for threads in seen), [t.name for t in set.union(*seen) - before]
    compressed = [p for p in samples if UID(read_file(p).transfer_syntax).is_compressed]
    assert (on_loop.completed, on_loop.failed, on_loop.recovered) == (len(samples), 0, len(compressed))
    fields = ("requests", "completed", "failed", "warning", "recovered", "failed_instances", "failure_reason")
    assert {f: getattr(on_loop, f) for f in fields} == {f: getattr(blocking, f) for f in fields}
    assert sorted(p.name for p in on_loop.files) == sorted(p.name for p in blocking.files)
