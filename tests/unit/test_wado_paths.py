"""WADO-RS serves only files inside the archive's folder, whatever path the index holds."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from pacskit.web.wado import safe_path


@pytest.fixture
def root(tmp_path):
    (tmp_path / "files" / "1.2" / "3.4").mkdir(parents=True)
    (tmp_path / "files" / "1.2" / "3.4" / "5.6.dcm").write_bytes(b"x")
    (tmp_path / "secret").write_bytes(b"y")
    return (tmp_path / "files").resolve()


def test_a_stored_file_is_found(root):
    assert safe_path(root, "1.2/3.4/5.6.dcm") == root / "1.2" / "3.4" / "5.6.dcm"


@pytest.mark.parametrize("relative", ["../secret", "1.2/../../secret", "/etc/passwd", "", ".",
                                      "1.2/3.4", "1.2/3.4/missing.dcm"])
def test_anything_else_is_not_found(root, relative):
    with pytest.raises(HTTPException) as raised:
        safe_path(root, relative)
    assert raised.value.status_code == 404
