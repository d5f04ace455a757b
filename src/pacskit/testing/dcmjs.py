"""dcmjs-dimse (npm, on Node.js) as an independent MPPS peer, both roles: its SCP as a
:class:`~pacskit.testing.peers.Peer`, its SCU driven by a request plan. The Node script
is ``dcmjs_mpps.js`` beside this module; the npm package lives in the project's
``.peers/node`` (``make peers``), or in ``PACSKIT_NODE_MODULES``."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pacskit.testing.peers import INSTALL_HINT, Peer, PeerError, require

SCRIPT = Path(__file__).with_name("dcmjs_mpps.js")


def node_modules() -> Path:
    """Where dcmjs-dimse is installed.

    Raises:
        PeerError: it is not.
    """
    folder = Path(os.environ.get("PACSKIT_NODE_MODULES") or Path(__file__).parents[3] / ".peers" / "node" / "node_modules")
    if not (folder / "dcmjs-dimse" / "package.json").is_file():
        raise PeerError(f"dcmjs-dimse is not installed in {folder}: {INSTALL_HINT}")
    return folder


def _env() -> dict[str, str]:
    return {**os.environ, "PACSKIT_NODE_MODULES": str(node_modules())}


class DcmjsMppsScp(Peer):
    """dcmjs-dimse's MPPS SCP (see ``dcmjs_mpps.js``); :meth:`requests` are those it
    served, in order, as it decoded them."""

    name = "dcmjs-mpps-scp"

    def __init__(self, workdir: Path | str | None = None, ae_title: str = "DCMJS", port: int | None = None) -> None:
        super().__init__(workdir, ae_title, port)

    def command(self) -> list[str]:
        node_modules()
        return [require("node"), str(SCRIPT), "scp", str(self.port), self.ae_title]

    def start(self) -> Peer:
        os.environ.setdefault("PACSKIT_NODE_MODULES", str(node_modules()))
        return super().start()

    def requests(self) -> list[dict[str, Any]]:
        """``{"op", "calling", "uid", "status", "dataset"}`` for each request served."""
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return [json.loads(line) for line in lines if line.startswith("{")]


def dcmjs_mpps_scu(host: str, port: int, called: str, calling: str, plan: list[dict[str, Any]],
                   timeout: float = 60) -> list[dict[str, Any]]:
    """Send ``plan`` (``{"op": "create"|"set"|"get", "uid", "dataset", "attributes"}``,
    datasets in DICOM JSON) with dcmjs-dimse's SCU on one association; the responses,
    ``{"op", "uid", "status", "comment", "dataset"}``.

    Raises:
        PeerError: the SCU failed.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(plan, handle)
    try:
        result = subprocess.run([require("node"), str(SCRIPT), "scu", host, str(port), called, calling, handle.name],
                                capture_output=True, text=True, env=_env(), timeout=timeout)
    finally:
        os.unlink(handle.name)
    if result.returncode != 0 or not result.stdout.strip():
        raise PeerError(f"dcmjs-dimse SCU failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    answers: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    return answers
