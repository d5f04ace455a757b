"""pacskit's own DIMSE status tables (:mod:`pacskit.status_tables`) against pynetdicom's
``pynetdicom.status``, which they copy: every code from 0x0000 to 0xFFFF, its category and
its meaning in each service's table."""

from __future__ import annotations

import pytest
from pynetdicom import status as theirs

from pacskit import status_tables

TABLES = {
    "general": (status_tables.GENERAL, theirs.GENERAL_STATUS),
    "verification": (status_tables.VERIFICATION, theirs.VERIFICATION_SERVICE_CLASS_STATUS),
    "storage": (status_tables.STORAGE, theirs.STORAGE_SERVICE_CLASS_STATUS),
    "find": (status_tables.QR_FIND, theirs.QR_FIND_SERVICE_CLASS_STATUS),
    "move": (status_tables.QR_MOVE, theirs.QR_MOVE_SERVICE_CLASS_STATUS),
    "get": (status_tables.QR_GET, theirs.QR_GET_SERVICE_CLASS_STATUS),
}


@pytest.mark.parametrize("name", TABLES)
def test_every_code_means_what_pynetdicom_says(name):
    ours, pynetdicoms = TABLES[name]
    assert [ours.get(code) for code in range(0x10000)] == [pynetdicoms.get(code) for code in range(0x10000)]


def test_every_code_has_pynetdicoms_category():
    assert [status_tables.category(code) for code in range(0x10000)] \
        == [theirs.code_to_category(code) for code in range(0x10000)]
