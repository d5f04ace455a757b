"""pacskit as the client of a hostile PACS (issue 18): during a C-GET, a scripted SCP sends
a 398 KiB deflated instance (an encapsulated PDF) that inflates to 400 MiB, then a final C-GET-RSP whose
deflated identifier inflates to 400 MiB too. ``pacskit get`` refuses the instance (0xA700,
with the limit it broke), ignores the identifier, writes nothing, and its peak memory
(VmHWM) stays within 50 MB of the same retrieve of a harmless deflated instance."""

from __future__ import annotations

from pathlib import Path

from hostile import (
    DEFLATED,
    ENCAPSULATED_DOCUMENT,
    ENCAPSULATED_PDF,
    PRIVATE_OB,
    MiB,
    deflate_bomb,
    explicit,
    image_header,
)
from peak_memory import run_measured_cli
from pydicom import Dataset
from scripted_peer import Conversation, ScriptedPeer

from pacskit.net.commands import C_GET_RSP, MESSAGE_ID, STATUS, c_store_rq, retrieve_rsp

BOMB = 400 * MiB
PEAK_GROWTH_KIB = 50 * 1000
OUT_OF_RESOURCES = 0xA700


def c_get_scp(instance: bytes, sop_instance_uid: str, final_identifier: bytes | None, answers: list[int]):
    """A C-GET SCP script: one C-STORE sub-operation of ``instance`` (deflated), then a
    final response, failed if the sub-operation was refused, carrying ``final_identifier``."""

    def script(conversation: Conversation) -> None:
        request = conversation.receive()
        store_context = conversation.context_for(ENCAPSULATED_PDF, DEFLATED)
        assert store_context is not None, conversation.contexts
        conversation.channel.send(store_context, c_store_rq(1, ENCAPSULATED_PDF, sop_instance_uid), instance)
        answers.append(conversation.receive().us(STATUS) or 0)
        failed = answers[-1] != 0
        conversation.channel.send(request.context_id, retrieve_rsp(
            C_GET_RSP, request.us(MESSAGE_ID) or 0, conversation.contexts[request.context_id][0],
            0xA702 if failed else 0x0000, (None, 0 if failed else 1, 1 if failed else 0, 0),
            has_identifier=final_identifier is not None), final_identifier)

    return script


def get(script, study: str, out: Path, workdir: Path):
    with ScriptedPeer("HOSTILE", script, accept_syntaxes={DEFLATED}) as peer:
        result, peak = run_measured_cli("get", peer.address, "--study-uid", study, "-o", out, workdir=workdir)
        assert peer.done.wait(30) and not peer.errors, peer.errors
    return result, peak


def test_a_deflate_bomb_during_c_get_is_refused_with_its_limit_in_bounded_memory(tmp_path):
    harmless = image_header(ENCAPSULATED_PDF, Modality="DOC")
    answers: list[int] = []
    baseline, baseline_peak = get(c_get_scp(deflate_bomb(explicit(harmless), ENCAPSULATED_DOCUMENT, 8 * MiB),
                                            harmless.SOPInstanceUID, None, answers),
                                  harmless.StudyInstanceUID, tmp_path / "harmless", tmp_path)
    assert baseline.returncode == 0, baseline.stderr
    assert answers == [0x0000] and len(list((tmp_path / "harmless").rglob("*.dcm"))) == 1

    hostile = image_header(ENCAPSULATED_PDF, Modality="DOC")
    bomb = deflate_bomb(explicit(hostile), ENCAPSULATED_DOCUMENT, BOMB)
    assert 390_000 < len(bomb) < 420_000, len(bomb)
    failed = Dataset()
    failed.FailedSOPInstanceUIDList = hostile.SOPInstanceUID
    identifier_bomb = deflate_bomb(explicit(failed), PRIVATE_OB, BOMB)
    answers.clear()
    result, peak = get(c_get_scp(bomb, hostile.SOPInstanceUID, identifier_bomb, answers),
                       hostile.StudyInstanceUID, tmp_path / "hostile", tmp_path)
    assert answers == [OUT_OF_RESOURCES]
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "inflates beyond 64 MiB" in result.stderr, result.stderr
    assert not [p for p in (tmp_path / "hostile").rglob("*") if p.is_file()]
    assert peak - baseline_peak < PEAK_GROWTH_KIB, f"{peak} KiB against {baseline_peak} KiB"
