"""PS3.15 Table E.1-1 (Application Level Confidentiality Profile Attributes), read from
the data file ``data/confidentiality_profile.json`` that ``scripts/deid_table.py``
extracts from a machine-readable edition of the Standard.

The action codes are those of PS3.15 E.1.1: D (a dummy value), Z (zero length), X
(remove), K (keep), C (clean), U (a consistent replacement UID), and the combinations
X/Z, X/D, X/Z/D, Z/D and X/Z/U*, which depend on the IOD. Without the IOD at hand the
combination that keeps the IOD valid is taken: X/Z → Z, X/D and Z/D and X/Z/D → D, and
X/Z/U* → the sequence kept with the UIDs in it replaced (``U*``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

COMBINED = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U*"}
PRIVATE_ROW = "(GGGG,EEEE) WHERE GGGG IS ODD"


@dataclass(frozen=True)
class Row:
    """One row of Table E.1-1: its tag (``group``/``element`` as text, ``X`` a wildcard
    digit), the Basic Profile's action and each option column's."""

    tag: str
    name: str
    basic: str
    options: dict[str, str]

    def action(self, chosen: frozenset[str]) -> str:
        """The action under the options ``chosen``: K if an option keeps it, else C if
        one cleans it, else the Basic Profile's (PS3.15 E.3)."""
        given = {self.options[o] for o in chosen if o in self.options}
        if "K" in given:
            return "K"
        if "C" in given:
            return "C"
        return COMBINED.get(self.basic, self.basic)


@dataclass(frozen=True)
class Table:
    """The rows of Table E.1-1 and where they came from."""

    edition: str
    source: dict[str, str]
    rows: tuple[Row, ...]

    def actions(self, chosen: frozenset[str]) -> tuple[dict[int, str], dict[tuple[int, int, int, int], str], str]:
        """The action per tag, per masked tag (``(group mask, group, element mask,
        element)`` for rows such as (60XX,3000)), and for private attributes."""
        exact: dict[int, str] = {}
        masked: dict[tuple[int, int, int, int], str] = {}
        private = "X"
        for row in self.rows:
            action = row.action(chosen)
            if row.tag == PRIVATE_ROW:
                private = action
                continue
            group, element = row.tag.strip("()").split(",")
            if "X" in row.tag:
                masked[(_mask(group), _value(group), _mask(element), _value(element))] = action
            else:
                exact[int(group + element, 16)] = action
        return exact, masked, private


def _mask(digits: str) -> int:
    return int("".join("0" if d == "X" else "F" for d in digits), 16)


def _value(digits: str) -> int:
    return int(digits.replace("X", "0"), 16)


@cache
def load_table() -> Table:
    """Table E.1-1 as shipped with pacskit."""
    text = resources.files("pacskit.deid").joinpath("data/confidentiality_profile.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    rows = tuple(Row(a["tag"], a["name"], a["basic"], dict(a["options"])) for a in data["attributes"])
    return Table(data["edition"], data["source"], rows)
