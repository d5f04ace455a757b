"""Real DICOM peers on free loopback ports, for tests and benchmarks.

DCMTK ``storescp``, ``dcmqrscp`` and ``wlmscpfs``, and Orthanc with its DICOMweb plugin, each started
with ``TCP_NODELAY=1`` (DCMTK's switch for Nagle's algorithm), probed until they answer a
C-ECHO (DCMTK ``echoscu``; Orthanc also its HTTP API), and stopped — terminated, then
killed — on exit. A missing program is an error that says how to install it: a test that
cannot find its peer fails, it is never skipped.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
INSTALL_HINT = "run `make peers` (scripts/install-peers.sh) to install DCMTK and Orthanc"


class PeerError(RuntimeError):
    """A peer is missing, or did not start."""


def free_port() -> int:
    """A TCP port free on loopback right now, below the ephemeral range when it can be:
    a port the kernel hands out for outgoing connections (thousands of them in the flood
    and concurrency tests) may be taken again before the peer binds it.

    Between the check and the peer's own bind the port is free for anyone, so each
    pytest-xdist worker draws from its own slice of the range, and a process walks its
    slice in order rather than drawing at random: no two workers, and no two peers of one
    worker, are handed the same port while the first is still starting."""
    global _cursor
    first, size = _slice()
    for _ in range(min(size, 200)):
        if _cursor is None:
            _cursor = random.randrange(size)
        port = first + _cursor % size
        _cursor += 1
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


_cursor: int | None = None


def _slice() -> tuple[int, int]:
    """This process's share of the ports below the ephemeral range: (first, count)."""
    high = _ephemeral_low()
    low = max(1024, high - 12000)
    try:
        workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
        worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    except ValueError:
        workers, worker = 1, 0
    size = (high - low) // workers
    return low + (worker % workers) * size, size


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def peer_env() -> dict[str, str]:
    """The environment DCMTK and Orthanc must run with: ``TCP_NODELAY=1``."""
    return {**os.environ, "TCP_NODELAY": "1"}


def require(program: str) -> str:
    """The path of ``program``, or a :class:`PeerError` saying how to install it."""
    path = shutil.which(program) or (program if Path(program).is_file() else None)
    if path is None:
        raise PeerError(f"{program} is not installed: {INSTALL_HINT}")
    return path


def dcmtk_tls(key: Path, certificate: Path, ca: Path, profile: str = "+py",
              require_peer_certificate: bool = True) -> list[str]:
    """DCMTK's TLS options: ``+tls`` with our key and certificate, ``+cf`` the trusted
    CA, the profile (``+py``, ``+px``, ``+pz``), and ``-rc`` (peer certificate required
    and verified) or ``-ic``."""
    return ["+tls", str(key), str(certificate), "-pw", "+cf", str(ca), profile,
            "-rc" if require_peer_certificate else "-ic"]


def echoscu(ae_title: str, host: str, port: int, timeout: float = 2.0, tls: Iterable[str] = ()) -> bool:
    """Whether the peer answers DCMTK's ``echoscu`` (with ``tls``, DCMTK's TLS options)."""
    result = subprocess.run(
        [require("echoscu"), "-aec", ae_title, "-to", str(timeout), "-ta", str(timeout), *tls,
         host, str(port)],
        capture_output=True, env=peer_env(), timeout=timeout * 4,
    )
    return result.returncode == 0


def storescu(ae_title: str, host: str, port: int, paths: Iterable[Path | str],
             calling: str = "STORESCU") -> None:
    """Send files or folders with DCMTK's ``storescu`` (recursively, one association)."""
    args = [require("storescu"), "-aet", calling, "-aec", ae_title, "+sd", "+r", "-nh",
            host, str(port), *map(str, paths)]
    result = subprocess.run(args, capture_output=True, text=True, env=peer_env(), timeout=600)
    if result.returncode != 0:
        raise PeerError(f"storescu to {ae_title} failed: {result.stderr.strip()[-2000:]}")


class Peer:
    """A peer process on loopback; a context manager that starts and stops it."""

    name = "peer"
    ready_timeout = 20.0

    def __init__(self, workdir: Path | str | None = None, ae_title: str = "PEER",
                 port: int | None = None) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"pacskit-{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ae_title = ae_title
        self.host = LOOPBACK
        self._port_chosen = port is None
        self.port = port or free_port()
        self.log_path = self.workdir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_args: list[str] = []
        self.tls_args: list[str] = []
        self.probe_tls_args: list[str] = []

    def use_tls(self, server: list[str], probe: list[str]) -> Peer:
        """Listen for DICOM TLS only (DCMTK peers): ``server`` are the peer's TLS options
        (:func:`dcmtk_tls`), ``probe`` those of the ``echoscu`` that checks it is ready."""
        self.tls_args, self.probe_tls_args = list(server), list(probe)
        return self

    @property
    def address(self) -> str:
        """``dicom://AET@host:port`` (``dicoms://`` for TLS), as the pacskit command line
        takes it."""
        scheme = "dicoms" if self.tls_args else "dicom"
        return f"{scheme}://{self.ae_title}@{self.host}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        return echoscu(self.ae_title, self.host, self.port, tls=self.probe_tls_args)

    def start(self) -> Peer:
        """Start the process and wait until it answers.

        Raises:
            PeerError: the program is missing, exited, or did not become ready.
        """
        for attempt in range(3):
            extra = [*self.extra_args, *self.tls_args]
            command = [*self.command()[:-1], *extra, self.command()[-1]] if extra else self.command()
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                env=peer_env(), cwd=self.workdir)
            deadline = time.monotonic() + self.ready_timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    if self._port_chosen and attempt < 2 and self._port_taken(logged):
                        self._choose_ports()
                        break
                    raise PeerError(f"{self.name} exited with {self.process.returncode}; log:\n{self.log()}")
                if self.is_ready():
                    return self
                time.sleep(0.1)
            else:
                self.stop()
                raise PeerError(f"{self.name} not ready within {self.ready_timeout:g} s; log:\n{self.log()}")
        raise PeerError(f"{self.name} found no free port; log:\n{self.log()}")

    def _choose_ports(self) -> None:
        """Pick the ports this peer was not given anew."""
        self.port = free_port()

    def _port_taken(self, logged: int) -> bool:
        """Whether the log written since ``logged`` bytes says the port (one we chose,
        free a moment before) was taken in the meantime."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(logged)
                return b"already in use" in log.read().lower()
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate the process (kill it if it lingers) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        """The tail of the peer's log."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> Peer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


class StoreSCP(Peer):
    """DCMTK ``storescp``: writes what it receives into ``output_dir``, bit-preserving.

    Args:
        accept_all: accept every transfer syntax DCMTK knows (compressed ones too);
            otherwise only the uncompressed ones.
        bit_preserving: write what arrives as it is; otherwise each dataset is parsed
            in memory first, and one DCMTK cannot parse aborts the association.
        sleep_during: seconds (whole) to sleep during each C-STORE: a slow destination.
    """

    name = "storescp"

    def __init__(self, workdir: Path | str | None = None, ae_title: str = "STORESCP",
                 port: int | None = None, accept_all: bool = True, bit_preserving: bool = True,
                 sleep_during: int = 0) -> None:
        super().__init__(workdir, ae_title, port)
        self.accept_all = accept_all
        self.bit_preserving = bit_preserving
        self.sleep_during = sleep_during
        self.output_dir = self.workdir / "received"
        self.output_dir.mkdir(exist_ok=True)

    def command(self) -> list[str]:
        return [require("storescp"), "--aetitle", self.ae_title, "--output-directory",
                str(self.output_dir), *(["--bit-preserving"] if self.bit_preserving else []),
                "--max-pdu", "131072", *(["+xa"] if self.accept_all else ["+x="]),
                *(["--sleep-during", str(self.sleep_during)] if self.sleep_during else []), str(self.port)]

    def received(self) -> list[Path]:
        """The files received so far."""
        return sorted(p for p in self.output_dir.rglob("*") if p.is_file())


class DcmQrSCP(Peer):
    """DCMTK ``dcmqrscp``: a Query/Retrieve SCP over its own small database.

    Args:
        move_destinations: AE title → (host, port) of the peers it may C-MOVE to.
        all_syntaxes: accept every transfer syntax pacskit knows, compressed ones too,
            for storing and for the C-GET sub-operations of the common storage SOP
            classes (an association negotiation profile, ``-xf``); without it,
            dcmqrscp takes uncompressed syntaxes only.
    """

    name = "dcmqrscp"

    def __init__(self, workdir: Path | str | None = None, ae_title: str = "DCMQRSCP",
                 port: int | None = None,
                 move_destinations: dict[str, tuple[str, int]] | None = None,
                 all_syntaxes: bool = False) -> None:
        super().__init__(workdir, ae_title, port)
        self.move_destinations = dict(move_destinations or {})
        self.database = self.workdir / "db"
        self.database.mkdir(exist_ok=True)
        self.config = self.workdir / "dcmqrscp.cfg"
        if all_syntaxes:
            profile = self.workdir / "association.cfg"
            profile.write_text(_every_syntax_profile())
            self.extra_args = ["--assoc-config-file", str(profile), "Incoming", "Outgoing", "--bit-preserving"]

    def command(self) -> list[str]:
        hosts = "\n".join(
            f"dest{i} = ({aet}, {host}, {port})"
            for i, (aet, (host, port)) in enumerate(self.move_destinations.items())
        )
        self.config.write_text(
            f"NetworkTCPPort = {self.port}\nMaxPDUSize = 131072\nMaxAssociations = 16\n"
            f"HostTable BEGIN\n{hosts}\nHostTable END\n"
            "VendorTable BEGIN\nVendorTable END\n"
            f"AETable BEGIN\n{self.ae_title} {self.database} RW (500, 1024mb) ANY\nAETable END\n"
        )
        return [require("dcmqrscp"), "--config", str(self.config),
                str(self.port)]

    def load(self, paths: Iterable[Path | str]) -> None:
        """Store files or folders into its database (with DCMTK ``storescu``)."""
        storescu(self.ae_title, self.host, self.port, paths)


class WlmScpFs(Peer):
    """DCMTK ``wlmscpfs``: a Modality Worklist SCP over worklist files (``*.wl``) in a
    folder named after its AE title, returning the character set of each file
    (``--keep-char-set``) and rejecting incomplete files (its default)."""

    name = "wlmscpfs"

    def __init__(self, workdir: Path | str | None = None, ae_title: str = "WLMSCPFS",
                 port: int | None = None) -> None:
        super().__init__(workdir, ae_title, port)
        self.database = self.workdir / "worklists"
        self.folder = self.database / ae_title
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "lockfile").touch()

    def command(self) -> list[str]:
        return [require("wlmscpfs"), "--data-files-path", str(self.database), "--keep-char-set",
                "--max-pdu", "131072", str(self.port)]

    def load(self, paths: Iterable[Path | str]) -> list[Path]:
        """Put worklist items in its folder: DICOM files as they are, DCMTK dumps made
        into DICOM files with ``dump2dcm``. Returns the ``.wl`` files written."""
        written = []
        for path in map(Path, paths):
            target = self.folder / f"{path.stem}.wl"
            if path.suffix == ".dump":
                result = subprocess.run([require("dump2dcm"), str(path), str(target)],
                                        capture_output=True, text=True, timeout=60)
                if result.returncode != 0:
                    raise PeerError(f"dump2dcm {path} failed: {result.stderr.strip()[-2000:]}")
            else:
                shutil.copyfile(path, target)
            written.append(target)
        return written


def _every_syntax_profile() -> str:
    """A DCMTK association configuration (PS3.8 negotiation, DCMTK's ``asconfig`` file
    format): the Query/Retrieve and Verification classes uncompressed, and as many storage
    SOP classes as fit in 128 contexts with every syntax, the requestor allowed to be SCP
    (C-GET) or SCU (C-STORE)."""
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made by globals()
        PatientRootQueryRetrieveInformationModelFind,
        PatientRootQueryRetrieveInformationModelGet,
        PatientRootQueryRetrieveInformationModelMove,
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelGet,
        StudyRootQueryRetrieveInformationModelMove,
        Verification,
    )

    from pacskit.net.contexts import EVERY_SYNTAX, storage_sop_classes

    services = [Verification, StudyRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelGet,
                StudyRootQueryRetrieveInformationModelMove, PatientRootQueryRetrieveInformationModelFind,
                PatientRootQueryRetrieveInformationModelGet, PatientRootQueryRetrieveInformationModelMove]
    storage = storage_sop_classes()[:128 - len(services)]
    lines = ["[[TransferSyntaxes]]", "[Every]"]
    lines += [f"TransferSyntax{i} = {uid}" for i, uid in enumerate(EVERY_SYNTAX, 1)]
    lines += ["[Plain]", "TransferSyntax1 = 1.2.840.10008.1.2.1", "TransferSyntax2 = 1.2.840.10008.1.2"]
    lines += ["[[PresentationContexts]]", "[Incoming]"]
    incoming = [f"{uid}\\Plain" for uid in services] + [f"{uid}\\Every" for uid in storage]
    lines += [f"PresentationContext{i} = {entry}" for i, entry in enumerate(incoming, 1)]
    lines += ["[Outgoing]"]
    lines += [f"PresentationContext{i} = {uid}\\Every" for i, uid in enumerate(storage, 1)]
    lines += ["[[SCPSCURoleSelection]]", "[Roles]"]
    lines += [f"Role{i} = {uid}\\BOTH" for i, uid in enumerate(storage, 1)]
    lines += ["[[Profiles]]", "[Incoming]", "PresentationContexts = Incoming", "SCPSCURoleSelection = Roles",
              "[Outgoing]", "PresentationContexts = Outgoing"]
    return "\n".join(lines) + "\n"


class Orthanc(Peer):
    """Orthanc with the DICOMweb plugin, storage and index in its own folder.

    Every peer may echo, store, find, get and move; C-MOVE destinations are registered
    with :meth:`add_modality`.

    Args:
        scp_timeout: seconds Orthanc waits for a message before aborting an association
            (its ``DicomScpTimeout``).
        tls: DICOM TLS on its DICOM port (only TLS then), as (certificate, key, trusted
            certificates), all PEM: Orthanc's ``DicomTlsEnabled``, ``DicomTlsCertificate``,
            ``DicomTlsPrivateKey`` and ``DicomTlsTrustedCertificates``; a peer's
            certificate is required (``DicomTlsRemoteCertificateRequired``). Its readiness
            is probed with ``echoscu`` over TLS with the same certificate.
    """

    name = "orthanc"
    ready_timeout = 30.0

    def __init__(self, workdir: Path | str | None = None, ae_title: str = "ORTHANC",
                 port: int | None = None, http_port: int | None = None,
                 modalities: dict[str, tuple[str, str, int]] | None = None,
                 scp_timeout: int = 30, tls: tuple[Path, Path, Path] | None = None) -> None:
        super().__init__(workdir, ae_title, port)
        self._http_port_chosen = http_port is None
        self.http_port = http_port or free_port()
        self.modalities = dict(modalities or {})
        self.tls = tls
        if tls is not None:
            self.probe_tls_args = dcmtk_tls(tls[1], tls[0], tls[2])
        self.scp_timeout = scp_timeout
        self.config = self.workdir / "orthanc.json"

    def _choose_ports(self) -> None:
        super()._choose_ports()
        if self._http_port_chosen:
            self.http_port = free_port()

    @property
    def url(self) -> str:
        """The REST API's base URL."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        """The DICOMweb root."""
        return f"{self.url}/dicom-web"

    def command(self) -> list[str]:
        if not DICOMWEB_PLUGIN.is_file():
            raise PeerError(f"the Orthanc DICOMweb plugin is not installed: {INSTALL_HINT}")
        config = {
            "Name": "pacskit-test",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "DicomAet": self.ae_title,
            "DicomPort": self.port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "UnknownSopClassAccepted": True,
            "DicomModalities": {name: list(v) for name, v in self.modalities.items()},
            "StorageCompression": False,
            "SaveJobs": False,
            "ConcurrentJobs": 2,
            "DicomScpTimeout": self.scp_timeout,
            "DeidentifyLogs": True,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        if self.tls is not None:
            config.update({"DicomTlsEnabled": True, "DicomTlsCertificate": str(self.tls[0]),
                           "DicomTlsPrivateKey": str(self.tls[1]), "DicomTlsTrustedCertificates": str(self.tls[2]),
                           "DicomTlsRemoteCertificateRequired": True})
        self.config.write_text(json.dumps(config, indent=2))
        return [require("Orthanc"), str(self.config)]

    def is_ready(self) -> bool:
        try:
            if httpx.get(f"{self.url}/system", timeout=2).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
        return echoscu(self.ae_title, self.host, self.port, tls=self.probe_tls_args)

    def load(self, paths: Iterable[Path | str]) -> int:
        """Upload DICOM files (or the files under folders) through the REST API."""
        count = 0
        with httpx.Client(base_url=self.url, timeout=60) as client:
            for path in _files(paths):
                response = client.post("/instances", content=path.read_bytes())
                if response.status_code != 200:
                    raise PeerError(f"Orthanc refused {path}: {response.status_code} {response.text[:200]}")
                count += 1
        return count

    def add_modality(self, name: str, ae_title: str, host: str, port: int, *, tls: bool = False) -> None:
        """Register a C-MOVE destination (reached over DICOM TLS with ``tls``: ``UseDicomTls``)."""
        entry: dict[str, object] = {"AET": ae_title, "Host": host, "Port": port}
        if tls:
            entry["UseDicomTls"] = True
        response = httpx.put(f"{self.url}/modalities/{name}", json=entry, timeout=10)
        response.raise_for_status()
        self.modalities[name] = (ae_title, host, port)

    def instance_count(self) -> int:
        """How many instances Orthanc holds."""
        return int(httpx.get(f"{self.url}/statistics", timeout=10).json()["CountInstances"])

    def clear(self) -> None:
        """Delete every patient (and so every instance)."""
        with httpx.Client(base_url=self.url, timeout=60) as client:
            for patient in client.get("/patients").json():
                client.delete(f"/patients/{patient}")


def _files(paths: Iterable[Path | str]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return files
