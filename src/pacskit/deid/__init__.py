"""De-identification: the Basic Application Level Confidentiality Profile of PS3.15
Annex E with its options, the action table taken from the Standard's Table E.1-1
(``data/confidentiality_profile.json``, made by ``scripts/deid_table.py``).

Pure: nothing here reads or writes but the data file. See docs/deidentification.md.
"""

from pacskit.deid.options import OPTIONS, parse_options
from pacskit.deid.profile import Deidentifier
from pacskit.deid.pseudonyms import Pseudonyms
from pacskit.deid.table import load_table

__all__ = ["OPTIONS", "Deidentifier", "Pseudonyms", "load_table", "parse_options"]
