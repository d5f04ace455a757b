"""``-v`` and ``-vv`` turn on pacskit's loggers only, DCMTK style on standard error
(``I: ...``, ``D: ...``), however often the options are given; ``pacskit serve`` logs
with timestamps at INFO without them."""

from __future__ import annotations

import logging
import os
import re

import pytest

from pacskit.cli.global_options import set_verbosity
from pacskit.cli.log_setup import MESSAGE_LOGGERS, OTHER_LIBRARIES, StderrHandler, configure
from pacskit.cli.main import app

NAMES = ("", "pacskit", *MESSAGE_LOGGERS, "pacskit.association", *OTHER_LIBRARIES)
TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"


@pytest.fixture(autouse=True)
def restored_logging():
    """The logging configuration as it was before the test."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in NAMES}
    yield
    root.handlers[:] = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, StderrHandler)]


@pytest.mark.parametrize(("verbose", "level"), [(0, logging.WARNING), (1, logging.INFO),
                                                (2, logging.DEBUG), (3, logging.DEBUG)])
def test_verbosity_sets_pacskit_loggers_only(verbose, level):
    set_verbosity(verbose)
    for name in ("pacskit", "pacskit.association", *MESSAGE_LOGGERS, "pacskit.web.access"):
        assert logging.getLogger(name).getEffectiveLevel() == level, name
    for name in ("httpx", "uvicorn.error", "sqlalchemy.engine", "pynetdicom", "some.other.library"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name


def test_lines_as_dcmtk_writes_them(capsys):
    set_verbosity(2)
    logging.getLogger("pacskit.association").info("Requesting association: A -> B at 127.0.0.1:104")
    logging.getLogger("pacskit.dimse").debug("command set:\n  (0000,0100) US [0x0030] C-ECHO-RQ")
    logging.getLogger("pacskit.association").warning("Association aborted by B")
    logging.getLogger("pacskit.archive").error("cannot index 1.2.3")
    logging.getLogger("httpx").warning("a library's warning")
    logging.getLogger("httpx").info("a library's information")
    assert capsys.readouterr().err.splitlines() == [
        "I: Requesting association: A -> B at 127.0.0.1:104",
        "D: command set:",
        "D:   (0000,0100) US [0x0030] C-ECHO-RQ",
        "W: Association aborted by B",
        "E: cannot index 1.2.3",
        "W: httpx: a library's warning",
    ]


def test_without_verbosity_only_warnings(capsys):
    set_verbosity(0)
    logging.getLogger("pacskit.dimse").info("Sending C-ECHO-RQ (ID 1, context 1, Verification SOP Class)")
    logging.getLogger("pacskit.net").warning("something is off")
    assert capsys.readouterr().err == "W: something is off\n"


def test_options_before_and_after_the_command_add_up_with_one_handler(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("PACSKIT_")]:
        monkeypatch.delenv(name)
    app(args=["-v", "nodes", "-v"], standalone_mode=False)
    assert logging.getLogger("pacskit.dimse").getEffectiveLevel() == logging.DEBUG
    assert len(ours()) == 1
    set_verbosity(1)
    assert len(ours()) == 1
    logging.getLogger("pacskit.dimse").info("once")
    assert capsys.readouterr().err.count("once") == 1


def test_the_server_log_has_timestamps_and_no_message_lines_by_default(capsys):
    configure(0, server=True)
    logging.getLogger("pacskit.association").info("Association request: STORESCU -> ARCHIVE")
    logging.getLogger("pacskit.dimse").info("Received C-STORE-RQ (ID 1, context 1, CT Image Storage)")
    logging.getLogger("pacskit.web.access").info('127.0.0.1:5000 - "GET /dicom-web/studies" 200 2 B 1.0 ms')
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert re.fullmatch(TIMESTAMP + r" I: Association request: STORESCU -> ARCHIVE", err[0])
    assert re.fullmatch(TIMESTAMP + r' I: 127\.0\.0\.1:5000 - "GET /dicom-web/studies" 200 2 B 1\.0 ms', err[1])

    configure(1, server=True)
    logging.getLogger("pacskit.dimse").info("Received C-STORE-RQ (ID 2, context 1, CT Image Storage)")
    logging.getLogger("pacskit.pdu").debug("Received P-DATA-TF PDU")
    assert re.fullmatch(TIMESTAMP + r" I: Received C-STORE-RQ \(ID 2, context 1, CT Image Storage\)\n",
                        capsys.readouterr().err)
    configure(2, server=True)
    logging.getLogger("pacskit.pdu").debug("Received P-DATA-TF PDU")
    assert re.fullmatch(TIMESTAMP + r" D: Received P-DATA-TF PDU\n", capsys.readouterr().err)
    assert len(ours()) == 1
