"""Regenerate src/pacskit/deid/data/confidentiality_profile.json, PS3.15 Table E.1-1.

    python scripts/deid_table.py GIT_DIR [COMMIT]

GIT_DIR is a clone (or bare mirror) of https://github.com/innolitics/dicom-standard, whose
``standard/confidentiality_profile_attributes.json`` is Table E.1-1 parsed from the
Standard's own HTML (``dicom_standard/extract_conf_profile_attributes.py``). The edition
is the one named by the last commit that changed that file ("Update standard to
rev2024b"). Nothing is typed by hand: every row and every option column is copied, the
column names mapped to pacskit's option names.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SOURCE_FILE = "standard/confidentiality_profile_attributes.json"
REPOSITORY = "https://github.com/innolitics/dicom-standard"
TARGET = Path(__file__).resolve().parent.parent / "src/pacskit/deid/data/confidentiality_profile.json"
OPTION_COLUMNS = {
    "rtnSafePrivOpt": "retain-safe-private",
    "rtnUIDsOpt": "retain-uids",
    "rtnDevIdOpt": "retain-device-identity",
    "rtnInstIdOpt": "retain-institution-identity",
    "rtnPatCharsOpt": "retain-patient-characteristics",
    "rtnLongFullDatesOpt": "retain-full-dates",
    "rtnLongModifDatesOpt": "retain-modified-dates",
    "cleanDescOpt": "clean-descriptors",
    "cleanStructContOpt": "clean-structured-content",
    "cleanGraphOpt": "clean-graphics",
}
KNOWN_COLUMNS = {"name", "tag", "id", "stdCompIOD", "basicProfile", *OPTION_COLUMNS}


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True,
                          text=True).stdout


def main(argv: list[str]) -> int:
    git_dir = argv[0]
    commit = argv[1] if len(argv) > 1 else git(git_dir, "rev-parse", "HEAD").strip()
    rows = json.loads(git(git_dir, "show", f"{commit}:{SOURCE_FILE}"))
    changed = git(git_dir, "log", "-1", "--format=%H%x00%s%x00%aI", commit, "--", SOURCE_FILE).strip()
    file_commit, subject, date = changed.split("\x00")
    edition = re.search(r"rev\.?\s*(\d{4}[a-e])", subject)
    if edition is None:
        raise SystemExit(f"no edition in the commit message {subject!r}")
    attributes = []
    for row in rows:
        unknown = set(row) - KNOWN_COLUMNS
        if unknown:
            raise SystemExit(f"unknown columns {sorted(unknown)} in {row['tag']}")
        attributes.append({
            "tag": row["tag"],
            "name": row["name"],
            "in_standard_iods": row["stdCompIOD"] == "Y",
            "basic": row["basicProfile"],
            "options": {OPTION_COLUMNS[c]: row[c] for c in OPTION_COLUMNS if c in row},
        })
    table = {
        "table": "DICOM PS3.15 Table E.1-1, Application Level Confidentiality Profile Attributes",
        "edition": edition.group(1),
        "source": {"repository": REPOSITORY, "path": SOURCE_FILE, "commit": commit,
                   "file_commit": file_commit, "file_commit_subject": subject, "file_commit_date": date},
        "generator": "scripts/deid_table.py",
        "options": sorted(OPTION_COLUMNS.values()),
        "attributes": attributes,
    }
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(attributes)} attributes, edition {edition.group(1)}, into {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
