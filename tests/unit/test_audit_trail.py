"""The audit trail's lines (pacskit.audit): one JSON object each, appended."""

from __future__ import annotations

import json
import threading

import pytest

from pacskit.audit import AuditTrail, open_trail
from pacskit.errors import ConfigError


def test_each_record_is_one_line_of_json_with_time_and_event_and_no_empty_fields(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"earlier": true}\n')
    trail = AuditTrail(str(path))
    trail.record("operation", operation="C-ECHO", user=None, status="0x0000")
    trail.close()
    first, line = path.read_text().splitlines()
    assert json.loads(first) == {"earlier": True}
    entry = json.loads(line)
    assert list(entry) == ["time", "event", "operation", "status"]
    assert entry["event"] == "operation" and entry["time"].endswith("Z")


def test_lines_of_concurrent_threads_do_not_interleave(tmp_path):
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(str(path))
    threads = [threading.Thread(target=lambda n=n: [trail.record("operation", n=n, pad="x" * 500)
                                                    for _ in range(200)]) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trail.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 800 and all(json.loads(line)["pad"] == "x" * 500 for line in lines)


def test_off_by_default_and_a_clear_error_for_a_file_that_cannot_be_opened(tmp_path):
    assert open_trail("") is None
    with pytest.raises(ConfigError, match="cannot open the audit file"):
        open_trail(str(tmp_path / "missing" / "audit.jsonl"))
