"""What DCMTK ``findscu -W`` gets from a worklist SCP, as comparable DICOM JSON, and the
queries of DCMTK's worklist corpus (shipped in Debian's dcmtk package)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pydicom import dcmread

from pacskit.testing.peers import peer_env, require

EXAMPLES = Path("/usr/share/doc/dcmtk/examples")
CORPUS_ITEMS = sorted((EXAMPLES / "wlistdb" / "OFFIS").glob("wklist*.dump"))
CORPUS_QUERIES = sorted((EXAMPLES / "wlistqry").glob("wlistqry*.dump"),
                        key=lambda p: int(p.stem.removeprefix("wlistqry")))
STATUS_TAG = "00400020"
STEP_SEQUENCE_TAG = "00400100"

# The corpus queries ask for stations, a station name and a modality that no item of the
# corpus has (its README says to adjust them to one's own database); these make the
# same queries about values the items do have.
ADJUSTMENTS = {"[AA2]": "[AA32]", "[AA4]": "[AB45]", "[A2]": "[STN*]", "[DD]": "[CT]"}


def dump_to_dicom(dump: Path, target: Path, replacements: dict[str, str] | None = None) -> Path:
    """A DCMTK dump made into a DICOM file with ``dump2dcm``, after ``replacements``."""
    text = dump.read_text()
    for old, new in (replacements or {}).items():
        text = text.replace(old, new)
    source = target.with_suffix(".dump")
    source.write_text(text)
    result = subprocess.run([require("dump2dcm"), str(source), str(target)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return target


def findscu_worklist(ae_title: str, port: int, query: Path | None = None, keys: list[str] = (),
                     calling: str = "FINDSCU") -> tuple[list[dict[str, Any]], str]:
    """The responses ``findscu -W`` gets (DICOM JSON, in order) and its output."""
    with tempfile.TemporaryDirectory(prefix="pacskit-findscu-") as folder:
        args = [require("findscu"), "-W", "-v", "-aet", calling, "-aec", ae_title, "-X", "-od", folder,
                *(arg for key in keys for arg in ("-k", key)), "127.0.0.1", str(port)]
        if query is not None:
            args.append(str(query))
        result = subprocess.run(args, capture_output=True, text=True, env=peer_env(), timeout=60)
        answers = []
        for path in sorted(Path(folder).glob("rsp*.dcm")):
            ds = dcmread(path)
            del ds.file_meta
            answers.append(ds.to_json_dict())
        return answers, result.stdout + result.stderr


def normalised(answer: dict[str, Any], *, ours: bool) -> str:
    """An answer as canonical JSON, without what the Standard leaves to the SCP:

    * attributes without a value and empty sequences, at any depth. An SCP may leave out
      a Type 1C or 3 return key the item does not hold (PS3.4 K.2.2.1.2): wlmscpfs does,
      pacskit returns every key asked for, empty. wlmscpfs also expands a key sequence
      given with an empty item into its own list of return keys, most of them empty.
    * in pacskit's answers, the Scheduled Procedure Step Status, which pacskit keeps for
      every item (the corpus files have none) and returns with the whole step.
    """
    return json.dumps(_without_empty(answer, ours), sort_keys=True)


def _without_empty(document: dict[str, Any], ours: bool) -> dict[str, Any]:
    kept = {}
    for tag, element in document.items():
        if ours and tag == STATUS_TAG:
            continue
        values = element.get("Value")
        if not values:
            continue
        if element.get("vr") == "SQ":
            values = [_without_empty(item, ours) for item in values]
        kept[tag] = {**element, "Value": values}
    return kept


def answer_set(answers: list[dict[str, Any]], *, ours: bool) -> list[str]:
    """The answers, normalised, sorted (an SCP may send them in any order)."""
    return sorted(normalised(a, ours=ours) for a in answers)
