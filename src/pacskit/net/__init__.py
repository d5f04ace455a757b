"""DIMSE networking: the only package that imports pynetdicom."""

from pacskit.net.association import associate
from pacskit.net.echo import c_echo

__all__ = ["associate", "c_echo"]
