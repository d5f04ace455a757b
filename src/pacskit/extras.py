"""The optional extras of a pacskit install, and which one a missing module belongs to.

``pip install pacskit`` installs the client: echo, find, get, move, store, copy between
nodes, DICOMweb servers and folders, receive, worklist queries, MPPS and commitment as SCU,
and the library. ``pacskit[pixels]`` adds the pixel codecs and NumPy (converting a file a
peer does not accept, de-identification that cleans pixel data); ``pacskit[server]`` adds
those and the archive (SQLAlchemy, psycopg), DICOMweb serving and rendering (Starlette,
uvicorn, Pillow). ``make run`` and ``make test`` install everything.
"""

from __future__ import annotations

PIXELS = "pixels"
SERVER = "server"

EXTRA_OF_MODULE = {
    "numpy": PIXELS,
    "pylibjpeg": PIXELS,
    "libjpeg": PIXELS,
    "openjpeg": PIXELS,
    "PIL": PIXELS,
    "sqlalchemy": SERVER,
    "psycopg": SERVER,
    "starlette": SERVER,
    "uvicorn": SERVER,
}
"""Top-level module → the extra that installs it."""


def extra_for(module: str | None) -> str | None:
    """The extra that installs ``module`` (a dotted name), or None if it is no extra's."""
    if not module:
        return None
    return EXTRA_OF_MODULE.get(module.split(".")[0])


def missing_extra_message(module: str) -> str:
    """One line saying which extra to install for ``module``."""
    extra = extra_for(module)
    return (f"this needs pacskit's {extra} extra ({module.split('.')[0]} is not installed): "
            f"pip install 'pacskit[{extra}]'")
