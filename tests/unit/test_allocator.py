"""pacskit.allocator: a process that assembles instances of 512 KiB from PDUs of 128 KiB
no longer touches new memory for each one once the allocator keeps freed memory."""

from __future__ import annotations

import subprocess
import sys

CHURN = """
import resource, sys
from pacskit.allocator import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(300):
    pdus = [bytearray(131078) for _ in range(4)]
    whole = b"".join(memoryview(p)[6:] for p in pdus)
    del pdus, whole
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_instances_assembled_one_after_the_other_reuse_the_same_memory():
    untuned, tuned = faults("plain"), faults("tuned")
    pages_per_instance = (4 * 131078 + 4 * 131072) // 4096
    assert tuned < 3 * pages_per_instance
    assert untuned > 50 * pages_per_instance > 10 * tuned
