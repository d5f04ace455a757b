"""An event-driven DICOM Upper Layer reactor for pynetdicom.

pynetdicom's DUL thread polls: when idle it sleeps 1 ms, then looks at its queues and
its socket again. Every PDU sent or received can wait for that sleep, which caps a
C-STORE or C-GET at a few hundred small instances per second. This reactor instead
blocks in ``select()`` on the socket and on a wake-up pipe that every put into its
queues writes to, so it reacts as soon as there is something to do and sleeps otherwise.
It is installed once, in :mod:`pacskit.net.ae`, for every association pacskit makes.

The association's own reactor (an acceptor's, serving requests) sleeps 1 ms between
looks at its queues; :class:`ReactorClock` replaces that sleep with a wait that the DUL
ends as soon as it has handed something up.
"""

from __future__ import annotations

import os
import queue
import select
import threading
import time
from typing import Any

from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ

IDLE_WAKE = 0.05
REACTOR_TICK = 0.001


class _WakingCheckpoint(threading.Event):
    """The association's reactor checkpoint, whose ``clear`` (another thread asking the
    reactor to pause) also ends the reactor's wait."""

    def __init__(self, wake: threading.Event, is_set: bool) -> None:
        super().__init__()
        self._wake = wake
        if is_set:
            self.set()

    def clear(self) -> None:
        super().clear()
        self._wake.set()


class ReactorClock:
    """The ``time`` module as pynetdicom's association module sees it, but for the
    association reactor's 1 ms tick, which waits for the DUL's wake-up (or a request to
    pause) instead."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        assoc = threading.current_thread()
        wake = getattr(assoc, "_pacskit_wake", None)
        if seconds != REACTOR_TICK or wake is None:
            time.sleep(seconds)
            return
        checkpoint = getattr(assoc, "_reactor_checkpoint", None)
        if checkpoint is not None and not isinstance(checkpoint, _WakingCheckpoint):
            checkpoint = _WakingCheckpoint(wake, checkpoint.is_set())
            assoc._reactor_checkpoint = checkpoint  # type: ignore[attr-defined]
        if checkpoint is None or checkpoint.is_set():
            wake.wait(IDLE_WAKE)
        wake.clear()


class _WakingQueue(queue.Queue):  # type: ignore[type-arg]
    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self._wake_fd = wake_fd

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        try:
            os.write(self._wake_fd, b"\0")
        except (BlockingIOError, OSError):
            pass


class EventDrivenDUL(DULServiceProvider):
    """A DUL whose reactor waits on its socket and queues instead of sleeping."""

    def __init__(self, assoc: Any) -> None:
        super().__init__(assoc)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.to_provider_queue = _WakingQueue(self._wake_w)
        self.event_queue = _WakingQueue(self._wake_w)
        self._reactor_wake = threading.Event()
        assoc._pacskit_wake = self._reactor_wake

    def kill_dul(self) -> None:
        super().kill_dul()
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass

    def _wait(self) -> None:
        if not self.to_provider_queue.empty() or not self.event_queue.empty():
            return
        sock = self.socket
        waitables: list[Any] = [self._wake_r]
        if sock is not None and sock.socket is not None and sock._is_connected:
            waitables.append(sock.socket)
        try:
            select.select(waitables, [], [], IDLE_WAKE)
        except (OSError, ValueError):
            pass
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def run_reactor(self) -> None:
        try:
            self._run()
        finally:
            self._reactor_wake.set()
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _run(self) -> None:
        self._idle_timer.start()
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
            if self._kill_thread:
                return
            if self.artim_timer.expired:
                self.event_queue.put("Evt18")
            try:
                if self._process_recv_primitive():
                    pass
                elif self._is_transport_event():
                    self._idle_timer.restart()
            except Exception:  # noqa: BLE001 - as pynetdicom: abort on any reactor error
                abort = A_ABORT_RQ()
                abort.source = 0x02
                abort.reason_diagnostic = 0x00
                if self.socket is not None:
                    self.socket.send(abort.encode())
                self.assoc.is_aborted = True
                self.assoc.is_established = False
                self.assoc._kill = True
                self._kill_thread = True
                return
            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                self._wait()
                continue
            self.state_machine.do_action(event)
            self._reactor_wake.set()
