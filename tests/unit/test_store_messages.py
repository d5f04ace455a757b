"""The hand-encoded parts of the C-STORE SCU: command sets, fragments, batches."""

from __future__ import annotations

import io
from pathlib import Path

from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
)
from pynetdicom.dsutils import decode

from pacskit.net.commands import c_store_rq
from pacskit.net.contexts import MAX_CONTEXTS
from pacskit.net.store import batches, contexts_for
from pacskit.net.wire import fragments, parse_command
from pacskit.scan import DicomFile

CT = "1.2.840.10008.5.1.4.1.1.2"


def test_c_store_rq_is_a_valid_command_set():
    raw = c_store_rq(7, CT, "1.2.3.45")
    command = decode(io.BytesIO(raw), True, True)
    assert command.CommandField == 0x0001
    assert command.MessageID == 7
    assert command.AffectedSOPClassUID == CT
    assert command.AffectedSOPInstanceUID == "1.2.3.45"
    assert command.CommandDataSetType == 0x0000
    assert command.CommandGroupLength == len(raw) - 12
    assert command.Priority == 0x0000
    assert len(raw) % 2 == 0


def test_parse_command_reads_back_every_element():
    parsed = parse_command(c_store_rq(65535, CT, "1.2.3"))
    assert parsed[0x0110] == (65535).to_bytes(2, "little")
    assert parsed[0x1000].rstrip(b"\0") == b"1.2.3"


def test_fragments_cover_the_data_and_mark_the_last(tmp_path):
    data = bytes(range(256)) * 41
    for source in (data, io.BytesIO(data)):
        pieces = list(fragments(source, 1000))
        assert b"".join(p for p, _ in pieces) == data
        assert [last for _, last in pieces] == [False] * (len(pieces) - 1) + [True]
        assert all(len(p) <= 1000 for p, _ in pieces)


def file_of(sop_class: str, syntax: str, n: int = 0) -> DicomFile:
    return DicomFile(Path(f"{sop_class}-{n}.dcm"), sop_class, f"1.2.{n}", syntax, 100, 10)


def test_each_syntax_gets_its_own_context_and_implicit_is_always_offered():
    files = [file_of(CT, JPEGBaseline8Bit), file_of(CT, ExplicitVRLittleEndian), file_of(CT, RLELossless)]
    proposed = {(cx.abstract_syntax, tuple(cx.transfer_syntax)) for cx in contexts_for(files)}
    assert proposed == {(CT, (s,)) for s in (ImplicitVRLittleEndian, JPEGBaseline8Bit,
                                             ExplicitVRLittleEndian, RLELossless)}


def test_batches_fit_in_128_contexts_and_send_every_file_once():
    files = [file_of(f"1.2.840.10008.5.1.4.1.1.{i}", syntax, i * 10 + j)
             for i in range(150) for j, syntax in enumerate((ExplicitVRLittleEndian, JPEGBaseline8Bit))]
    groups = list(batches(files))
    assert len(groups) > 1
    assert sorted(f.path for g in groups for f in g) == sorted(f.path for f in files)
    assert all(len(contexts_for(g)) <= MAX_CONTEXTS for g in groups)
