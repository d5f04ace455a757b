"""Instances pushed to pacskit, written into a folder: a plain Storage SCP (PS3.4 Annex B)
— what DCMTK's ``storescp -od`` does — for modalities and scripts that send.

Each instance is written as it came, under the layout, through the same
:class:`~pacskit.storage.FolderSink` and :class:`~pacskit.retrieve.Receiver` as a
retrieve: patient names withheld unless allowed (blanked in the file, refused in the
layout), a deflated instance checked against the inflation bound, a write failure
answered with a failure status and counted; nothing is half-written (files are renamed
into place once whole).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pacskit.layout import DEFAULT_LAYOUT, Layout
from pacskit.models import RetrieveProgress, RetrieveResult
from pacskit.net.acceptor import Acceptor
from pacskit.net.scp import storage_scp
from pacskit.privacy import PrivacyPolicy
from pacskit.retrieve import Receiver
from pacskit.settings import Settings
from pacskit.storage import FolderSink


@dataclass
class Reception:
    """A storage SCP writing into a folder, while its block runs.

    Attributes:
        result: what was received, written, skipped (already present) and refused so far.
        acceptor: the listening acceptor (its address, its connections), once listening.
    """

    result: RetrieveResult
    acceptor: Acceptor | None = None
    started: float = field(default_factory=time.monotonic)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _last: float = field(default_factory=time.monotonic)

    def notify(self, progress: RetrieveProgress) -> None:
        with self._changed:
            self._last = time.monotonic()
            self._changed.notify_all()

    def wait(self, stop: threading.Event, *, max_instances: int | None = None,
             idle_timeout: float | None = None) -> str:
        """Until ``stop`` is set, ``max_instances`` instances were taken (received or
        refused), or nothing arrived for ``idle_timeout`` seconds; which of
        ``stopped``, ``count``, ``idle``."""
        while True:
            with self._changed:
                taken = self.result.written + self.result.skipped + len(self.result.local_failures)
                if max_instances is not None and taken >= max_instances:
                    return "count"
                if idle_timeout is not None and time.monotonic() - self._last >= idle_timeout:
                    return "idle"
                self._changed.wait(0.2)
            if stop.is_set():
                return "stopped"

    def finish(self) -> RetrieveResult:
        """The result, with the time it took."""
        self.result.seconds = time.monotonic() - self.started
        return self.result


@contextmanager
def receiving(settings: Settings, output_dir: Path | str, *, layout: str = DEFAULT_LAYOUT,
              overwrite: bool = False, port: int | None = None,
              check_called_ae_title: bool = False) -> Iterator[Reception]:
    """Listen on ``port`` (our port by default) as a Storage SCP writing each instance
    into ``output_dir`` under ``layout`` until the block ends. Any called AE title is
    accepted unless ``check_called_ae_title`` (as ``storescp``).

    Raises:
        NetworkError: the port cannot be listened on.
        UsageError: the layout has a patient-name field the privacy policy withholds.
    """
    privacy = PrivacyPolicy(allow_patient_names=settings.allow_patient_names)
    sink = FolderSink(output_dir, Layout(layout), overwrite=overwrite, privacy=privacy)
    sink.prepare()
    reception = Reception(RetrieveResult(method="receive"))
    receiver = Receiver(reception.result, sink, privacy, reception.notify, None)
    with storage_scp(settings, receiver, port=port, check_called_ae_title=check_called_ae_title) as acceptor:
        reception.acceptor = acceptor
        yield reception
    reception.finish()
