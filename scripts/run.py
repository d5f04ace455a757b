"""`make run`: start `pacskit serve` on the embedded default (SQLite, ./pacskit-data).

The archive listens on the port and AE title of pacskit.toml and the environment
(PACSKIT_PORT, PACSKIT_AE_TITLE, PACSKIT_WEB__PORT; 11112, PACSKIT and 8080 by default).
Its nodes table gets, for this session, a peer with that AE title on 127.0.0.1 allowed
every operation — pacskit's own default calling AE title — and the banner prints the
commands to try in another terminal, with the ports actually used.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pacskit.settings import Settings

BIN = Path(sys.executable).parent


def banner(settings: Settings) -> str:
    """What to try in another terminal against the archive ``settings`` describe."""
    dimse = f"dicom://{settings.ae_title}@127.0.0.1:{settings.port}"
    lines = [
        f"    .venv/bin/pacskit echo {dimse}",
        f"    .venv/bin/pacskit store some/folder --to {dimse}",
        f"    .venv/bin/pacskit find {dimse}",
        f"    .venv/bin/pacskit get {dimse} --study-uid ... -o out/",
    ]
    if settings.web.enabled:
        lines.append(f"    .venv/bin/pacskit find http://127.0.0.1:{settings.web.port}/dicom-web"
                     "      # the same over DICOMweb")
    return f"pacskit archive on {dimse}; in another terminal:\n\n" + "\n".join(lines) + "\n"


def main() -> int:
    settings = Settings.load(os.environ.get("PACSKIT_CONFIG"))
    env = {
        **os.environ,
        "PACSKIT_NODES__LOCAL__AE_TITLE": settings.ae_title,
        "PACSKIT_NODES__LOCAL__HOST": "127.0.0.1",
        "PACSKIT_NODES__LOCAL__PORT": str(settings.port),
    }
    print(banner(settings), flush=True)
    os.execve(BIN / "pacskit", [str(BIN / "pacskit"), "serve"], env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
