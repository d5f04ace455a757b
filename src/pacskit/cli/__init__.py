"""The ``pacskit`` command line: one module per command, wired up in :mod:`pacskit.cli.main`."""
