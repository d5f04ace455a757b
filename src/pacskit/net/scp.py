"""pacskit's own Storage SCP, started for as long as a C-MOVE to ourselves needs it."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pynetdicom import evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from pacskit.errors import NetworkError
from pacskit.net.ae import NODELAY_HANDLER, make_ae
from pacskit.net.contexts import scp_storage_contexts
from pacskit.net.retrieve import InstanceHandler, store_handler
from pacskit.settings import Settings


@contextmanager
def storage_scp(settings: Settings, on_instance: InstanceHandler,
                port: int | None = None) -> Iterator[ThreadedAssociationServer]:
    """Listen as a Storage SCP (AE title and port from settings) until the block ends.

    Only associations that call our AE title are accepted.

    Raises:
        NetworkError: the port cannot be listened on (in use, no permission).
    """
    ae = make_ae(settings)
    ae.require_called_aet = True
    for context in scp_storage_contexts():
        ae.add_supported_context(context.abstract_syntax, context.transfer_syntax)
    ae.add_supported_context(Verification)
    handlers: list[tuple[evt.EventType, Callable[..., object]]] = [
        NODELAY_HANDLER, (evt.EVT_C_STORE, store_handler(on_instance))
    ]
    listen = port if port is not None else settings.port
    try:
        server = ae.start_server((settings.bind_address, listen), block=False, evt_handlers=handlers)
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise NetworkError(f"cannot listen on {settings.bind_address}:{listen}: {reason}") from None
    try:
        yield server
    finally:
        server.shutdown()
