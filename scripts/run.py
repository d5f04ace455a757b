"""`make run`: start `pacskit serve` on the embedded default (SQLite, ./pacskit-data).

The archive listens on port 11112 as PACSKIT. Its nodes table gets, for this session, a
peer with AE title PACSKIT on 127.0.0.1 allowed every operation — pacskit's own default
calling AE title — so that in another terminal:

    .venv/bin/pacskit echo dicom://PACSKIT@127.0.0.1:11112
    .venv/bin/pacskit store some/folder --to dicom://PACSKIT@127.0.0.1:11112
    .venv/bin/pacskit find dicom://PACSKIT@127.0.0.1:11112
    .venv/bin/pacskit get dicom://PACSKIT@127.0.0.1:11112 --study-uid ... -o out/
    .venv/bin/pacskit find http://127.0.0.1:8080/dicom-web      # the same over DICOMweb
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def main() -> int:
    env = {
        **os.environ,
        "PACSKIT_NODES__LOCAL__AE_TITLE": os.environ.get("PACSKIT_AE_TITLE", "PACSKIT"),
        "PACSKIT_NODES__LOCAL__HOST": "127.0.0.1",
        "PACSKIT_NODES__LOCAL__PORT": os.environ.get("PACSKIT_PORT", "11112"),
    }
    print(__doc__.split("\n\n", 1)[1].rstrip('"\n'), flush=True)
    os.execve(BIN / "pacskit", [str(BIN / "pacskit"), "serve"], env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
