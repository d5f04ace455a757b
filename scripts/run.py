"""`make run`: show what pacskit can do, against a DICOM peer started on loopback.

Until `pacskit serve` exists, this starts DCMTK's storescp on a free loopback port (when
DCMTK is installed) and echoes it with `pacskit echo`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def main() -> int:
    subprocess.run([BIN / "pacskit", "--help"], check=True)
    if shutil.which("storescp") is None:
        print("DCMTK is not installed (run `make peers`); nothing to echo.")
        return 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "TCP_NODELAY": "1"}
        scp = subprocess.Popen(["storescp", "-aet", "STORESCP", "-od", folder, str(port)], env=env)
        try:
            for _ in range(50):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            address = f"dicom://STORESCP@127.0.0.1:{port}"
            print(f"\n$ pacskit echo {address}")
            return subprocess.run([BIN / "pacskit", "echo", address]).returncode
        finally:
            scp.terminate()
            scp.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
