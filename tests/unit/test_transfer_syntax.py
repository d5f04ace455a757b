"""pacskit's pydicom-free names for what a negotiation gives: the transfer syntax's
encoding, and pacskit's implementation class UID."""

from __future__ import annotations

import pytest
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID
from pydicom.uid import UID_dictionary as UIDS

from pacskit.implementation import IMPLEMENTATION_CLASS_UID
from pacskit.transfer_syntax import TransferSyntax

TRANSFER_SYNTAXES = sorted(uid for uid, entry in UIDS.items() if entry[1] == "Transfer Syntax")


@pytest.mark.parametrize("uid", TRANSFER_SYNTAXES)
def test_every_standard_transfer_syntax_reads_as_pydicom_reads_it(uid):
    ours, theirs = TransferSyntax(uid), UID(uid)
    assert (ours.is_implicit_VR, ours.is_little_endian, ours.is_deflated, ours.name) == (
        theirs.is_implicit_VR, theirs.is_little_endian, theirs.is_deflated, theirs.name)


def test_a_syntax_pydicom_does_not_know_is_explicit_little_endian():
    private = TransferSyntax("1.2.826.0.1.3680043.8.498.99999")
    assert (private.is_implicit_VR, private.is_little_endian, private.is_deflated) == (False, True, False)
    assert private.name == private


def test_deflated_image_frame_compression_deflates_frames_not_the_dataset():
    frames = TransferSyntax("1.2.840.10008.1.2.8.1")
    assert (frames.is_implicit_VR, frames.is_little_endian, frames.is_deflated) == (False, True, False)


def test_the_implementation_class_uid_is_pydicoms():
    assert IMPLEMENTATION_CLASS_UID == PYDICOM_IMPLEMENTATION_UID
