"""A PostgreSQL database of its own for a test, on the machine's server (127.0.0.1:5432,
trust authentication): created empty, dropped afterwards. No server is a failure, never a
skip: `make test` expects the one the machine runs (see README)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def fresh_database(prefix: str = "pacskit") -> Iterator[str]:
    """The URL of a new, empty database, dropped (connections and all) on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
