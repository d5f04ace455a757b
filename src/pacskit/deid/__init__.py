"""De-identification: the Basic Application Level Confidentiality Profile of PS3.15
Annex E with its options, the action table taken from the Standard's Table E.1-1
(``data/confidentiality_profile.json``, made by ``scripts/deid_table.py``).

Pure: nothing here reads or writes but the data file. See docs/deidentification.md.

The names are imported on first use: a find or get that de-identifies nothing asks
:mod:`pacskit.deid.configured` and loads neither the profile nor its table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacskit.lazy_names import lazy_getattr

if TYPE_CHECKING:
    from pacskit.deid.options import OPTIONS, parse_options
    from pacskit.deid.profile import Deidentifier
    from pacskit.deid.pseudonyms import Pseudonyms
    from pacskit.deid.table import load_table

_HOMES = {
    "OPTIONS": "pacskit.deid.options",
    "parse_options": "pacskit.deid.options",
    "Deidentifier": "pacskit.deid.profile",
    "Pseudonyms": "pacskit.deid.pseudonyms",
    "load_table": "pacskit.deid.table",
}


__getattr__ = lazy_getattr(__name__, _HOMES)


__all__ = ["OPTIONS", "Deidentifier", "Pseudonyms", "load_table", "parse_options"]
