"""``--aec AET``: the Called AE Title of one call (PS3.8 9.3.2), as DCMTK's ``-aec``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer

from pacskit.errors import UsageError
from pacskit.nodes import Node, is_inline_address, is_web_address, validate_ae_title

if TYPE_CHECKING:
    from pacskit.client import Client

CalledAeOption = Annotated[str | None, typer.Option(
    "--aec", help="Called AE title for this call, instead of the node's; with it, the target may be host:port.")]

_HOST_PORT = re.compile(r"^(?P<host>\[[^\]]+\]|[^:/@\s\[\]]+):(?P<port>\d+)$")


def target(client: Client, name: str, called_ae: str | None) -> Node | str:
    """The node ``name`` names, called as ``called_ae`` when it is given; then ``name`` may
    also be a bare ``host:port`` that is not a configured node.

    Raises:
        UsageError: ``--aec`` with a DICOMweb target, which has no AE title.
        InvalidAddress, UnknownNode: ``called_ae`` or ``name`` is not valid.
    """
    if called_ae is None:
        return name
    called_ae = validate_ae_title(called_ae)
    if is_web_address(name) or client.web_node(name) is not None:
        raise UsageError(f"--aec applies to DICOM nodes, not to the DICOMweb service {name!r}")
    bare = _HOST_PORT.match(name)
    if bare and not is_inline_address(name) and name not in client.settings.nodes:
        return Node.parse(f"dicom://{called_ae}@{bare['host']}:{bare['port']}")
    return client.node(name).model_copy(update={"ae_title": called_ae})
