"""pacskit as the client of a hostile DICOMweb server (issue 18): a QIDO-RS answer of
32 MB is read in memory proportional to it (the parsed JSON of the whole answer is never
held), one over ``max_search_answer`` is refused once that many bytes have come, and one
nesting 200,000 JSON arrays is refused without a RecursionError: each a one-line error
with exit code 27 (HttpFailure)."""

from __future__ import annotations

import json

from canned_http import CannedServer
from peak_memory import run_measured_cli

MB = 1_000_000
MiB = 1 << 20
HTTP_FAILURE = 27


def study(n: int) -> dict:
    return {"00080020": {"vr": "DA", "Value": ["20240101"]}, "00080050": {"vr": "SH", "Value": [f"ACC{n}"]},
            "00080061": {"vr": "CS", "Value": ["CT", "MR"]}, "00100020": {"vr": "LO", "Value": [f"PAT{n}"]},
            "0020000D": {"vr": "UI", "Value": [f"2.25.{n}"]}, "00081030": {"vr": "LO", "Value": ["X" * 40]},
            "00201206": {"vr": "IS", "Value": [2]}, "00201208": {"vr": "IS", "Value": [20]},
            "00081190": {"vr": "UR", "Value": [f"http://127.0.0.1/dicom-web/studies/2.25.{n}"]}}


def answer_of(size: int) -> bytes:
    count = size // len(json.dumps(study(10 ** 6)))
    return json.dumps([study(n) for n in range(count)]).encode()


def find(body: bytes, tmp_path, **settings: str):
    with CannedServer(body) as server:
        return run_measured_cli("find", server.url, "--level", "study", workdir=tmp_path, settings=settings)


def assert_one_line_failure(result, *expected: str) -> None:
    assert result.returncode == HTTP_FAILURE, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def test_a_large_qido_rs_answer_costs_memory_proportional_to_it(tmp_path):
    small, small_peak = find(answer_of(1000), tmp_path)
    assert small.returncode == 0, small.stderr
    body = answer_of(32 * MB)
    large, large_peak = find(body, tmp_path)
    assert large.returncode == 0, large.stderr
    assert "2.25.1000" in large.stdout
    assert (large_peak - small_peak) * 1024 < 11 * len(body), f"+{large_peak - small_peak} KiB"


def test_a_qido_rs_answer_over_max_search_answer_is_refused_as_it_arrives(tmp_path):
    _, small_peak = find(answer_of(1000), tmp_path)
    result, peak = find(answer_of(32 * MB), tmp_path, MAX_SEARCH_ANSWER=str(4 * MiB))
    assert_one_line_failure(result, "more than the limit of 4 MiB (max_search_answer)")
    assert (peak - small_peak) * 1024 < 16 * MiB, f"+{peak - small_peak} KiB"


def test_a_qido_rs_answer_nesting_200000_arrays_is_refused_in_one_line(tmp_path):
    result, _ = find(b"[" * 200_000 + b"]" * 200_000, tmp_path)
    assert_one_line_failure(result, "malformed DICOM JSON", "nested deeper than")
    deep = {"0040A730": {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": ["LEAF"]}}]}}
    for _ in range(200):
        deep = {"0040A730": {"vr": "SQ", "Value": [deep]}}
    result, _ = find(json.dumps([{**study(1), **deep}]).encode(), tmp_path)
    assert_one_line_failure(result, "nested deeper than")
