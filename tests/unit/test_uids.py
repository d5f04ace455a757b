"""UIDs per PS3.5 9.1, and what of a UI value is padding."""

from __future__ import annotations

import pytest

from pacskit.archive.uids import canonical_uid

VALID = ["1.2.840.10008.5.1.4.1.1.2", "0", "1.0.2", "2.25.329800735698586629295641978511506172918",
         "1." + "2" * 62]


@pytest.mark.parametrize("uid", VALID)
def test_a_valid_uid_is_its_own_canonical_form(uid):
    assert canonical_uid(uid) == uid


@pytest.mark.parametrize("padded", ["1.2.3\0", "1.2.3 ", "1.2.3\0\0", "1.2.3 \0"])
def test_trailing_nul_and_space_are_padding(padded):
    assert canonical_uid(padded) == "1.2.3"


@pytest.mark.parametrize("value", [
    "", "\0", "1.2.3.4\n\0", "1.2.3\n", "1.2.3\r", "1" * 70, "1." + "2" * 63, "01.2.3.4", "1.02.3", "1..2",
    "1.2.", ".1.2", " 1.2.3", "1.2 .3", "1.2.3a", "1,2,3", "1.2\\1.3", "１.2", "-1.2", "+1.2",
])
def test_anything_else_is_not_a_uid(value):
    assert canonical_uid(value) is None
