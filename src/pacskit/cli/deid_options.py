"""``--deidentify`` and ``--deid-option``, shared by ``find`` and ``get``."""

from __future__ import annotations

from typing import Annotated

import typer

from pacskit.deid.options import OPTIONS

DeidentifyOption = Annotated[bool, typer.Option(
    "--deidentify",
    help="De-identify (PS3.15 Annex E Basic Profile; keyed pseudonyms need deidentify.secret).")]
DeidOptionOption = Annotated[list[str] | None, typer.Option(
    "--deid-option",
    help=f"A profile option (implies --deidentify); repeatable or comma-separated: {', '.join(OPTIONS)}.")]
