"""``pacskit receive``: a Storage SCP writing what is pushed to it into a folder."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from pacskit.cli.common import SummaryFormat, counted, err, out, print_json, rates, state
from pacskit.cli.log_setup import configure
from pacskit.layout import DEFAULT_LAYOUT
from pacskit.models import RetrieveResult

MAX_LISTED_FAILURES = 20


def receive(
    ctx: typer.Context,
    output_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder to write into.")],
    layout: Annotated[str, typer.Option("--layout", help="Path template under the output folder.")] = DEFAULT_LAYOUT,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace files already present.")] = False,
    check_called_ae: Annotated[bool, typer.Option("--check-called-ae", help="Accept only associations that call our AE title (--aet).")] = False,
    max_instances: Annotated[int | None, typer.Option("--max-instances", help="Stop after N instances.", min=1)] = None,
    idle_timeout: Annotated[float | None, typer.Option("--idle-timeout", help="Stop after S seconds without an instance.", min=0.1)] = None,
    output: Annotated[SummaryFormat, typer.Option("--format", "-f", help="Summary format (table or json).")] = SummaryFormat.table,
) -> None:
    """Receive instances pushed by C-STORE into a folder (the storescp -od of pacskit), patient names withheld.

    Listens on our port (--port) until Ctrl-C, then prints what was received.

    Examples:

      pacskit receive -o incoming --port 11112

      pacskit receive -o incoming --layout '{StudyInstanceUID}/{SOPInstanceUID}.dcm' --max-instances 10
    """
    from pacskit.receive import receiving

    configure(state(ctx).verbose, server=True)
    settings = state(ctx).settings()
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    with receiving(settings, output_dir, layout=layout, overwrite=overwrite,
                   check_called_ae_title=check_called_ae) as reception:
        err.print(f"pacskit {settings.ae_title} receiving on {settings.bind_address}:{settings.port} into "
                  f"{output_dir}; Ctrl-C stops.", markup=False)
        reception.wait(stop, max_instances=max_instances, idle_timeout=idle_timeout)
    result = reception.result
    if output is SummaryFormat.json:
        print_json(summary(result))
    else:
        print_summary(result)


def summary(result: RetrieveResult) -> dict[str, object]:
    """The JSON summary of a reception."""
    return {"received": result.received, "written": result.written, "skipped": result.skipped,
            "refused": len(result.local_failures), "bytes": result.bytes, "seconds": result.seconds,
            "refusals": [failure.model_dump() for failure in result.local_failures]}


def print_summary(result: RetrieveResult) -> None:
    """A human summary of a reception."""
    out.print(f"Received {counted(result.received, 'instance')} ({result.bytes / 1e6:.1f} MB) in "
              f"{result.seconds:.1f} s ({rates(result.received, result.bytes, result.seconds)}): "
              f"{result.written} written, {result.skipped} already present, "
              f"{len(result.local_failures)} refused.")
    for failure in result.local_failures[:MAX_LISTED_FAILURES]:
        err.print(f"  not stored: {failure.sop_instance_uid}: {failure.reason}", markup=False)
