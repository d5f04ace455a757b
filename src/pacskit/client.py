"""The synchronous client: every DICOM operation pacskit performs as a library call."""

from __future__ import annotations

from pathlib import Path

from pacskit.models import EchoResult
from pacskit.net import c_echo
from pacskit.nodes import Node
from pacskit.settings import Settings


class Client:
    """A DICOM client configured by :class:`~pacskit.settings.Settings`.

    >>> client = Client()                      # pacskit.toml, PACSKIT_* environment
    >>> client.echo("dicom://ORTHANC@localhost:4242")

    Args:
        settings: the settings to use; by default they are loaded from the config file
            and the environment.
        config_file: a ``pacskit.toml`` to load instead of the default one.
    """

    def __init__(self, settings: Settings | None = None, *, config_file: Path | str | None = None):
        self.settings = settings if settings is not None else Settings.load(config_file)

    def node(self, node: Node | str) -> Node:
        """Resolve a node name or ``dicom://AET@host:port`` address.

        Raises:
            UnknownNode, InvalidAddress: the node cannot be resolved.
        """
        return node if isinstance(node, Node) else self.settings.resolve_node(node)

    def echo(self, node: Node | str) -> EchoResult:
        """Verify that ``node`` answers a C-ECHO (PS3.4 Annex A).

        Raises:
            UnknownNode, InvalidAddress: ``node`` cannot be resolved.
            NetworkError: the peer cannot be reached or rejects the association.
            DimseError: the C-ECHO failed.
        """
        target = self.node(node)
        status, associate_s, rtt_s = c_echo(self.settings, target)
        return EchoResult(node=target, status=status, associate_ms=associate_s * 1e3, rtt_ms=rtt_s * 1e3)
