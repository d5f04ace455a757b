"""The command line's ``echo`` and ``find`` as :class:`pacskit.AsyncClient` calls on the
native asyncio driver, in-process, with the exit code and error line the command would
give: the protocol cases of the requestor run over both drivers."""

from __future__ import annotations

import asyncio
import json
import subprocess

from pacskit import AsyncClient, Settings
from pacskit.errors import PacskitError
from pacskit.query import Query


def run_async(*args: object) -> subprocess.CompletedProcess[str]:
    """``pacskit [--dimse-timeout S] echo|find ADDRESS [-f FORMAT]`` through AsyncClient."""
    words = [str(arg) for arg in args]
    settings: dict[str, object] = {}
    if words[0] == "--dimse-timeout":
        settings["dimse_timeout"] = float(words[1])
        words = words[2:]
    command, address = words[0], words[1]
    client = AsyncClient(Settings(**settings))

    async def call() -> str:
        if command == "echo":
            await client.echo(address)
            return ""
        matches = await client.find(address, Query.build("study"))
        return json.dumps([match.to_json_dict() for match in matches])

    try:
        stdout = asyncio.run(call())
    except PacskitError as exc:
        return subprocess.CompletedProcess(args, exc.exit_code, "", f"pacskit: error: {exc}\n")
    return subprocess.CompletedProcess(args, 0, stdout, "")
