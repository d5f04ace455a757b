from pathlib import Path, PurePosixPath

import pytest

from pacskit.errors import OutputError, UsageError
from pacskit.layout import Layout, safe_join, sanitize_component

UIDS = {"PatientID": "P1", "StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3",
        "SOPInstanceUID": "1.2.3.4"}


def test_default_layout():
    assert Layout().relative_path(UIDS) == PurePosixPath("P1/1.2/1.2.3/1.2.3.4.dcm")


@pytest.mark.parametrize(
    "hostile", ["../../x", "..", ".", "/etc/passwd", "a/b", "a\\b", "\x00", "../", "~root", " "]
)
def test_peer_values_stay_one_component_inside_the_root(tmp_path, hostile):
    values = {**UIDS, "PatientID": hostile, "SOPInstanceUID": hostile}
    path = Layout().path_in(tmp_path, values)
    assert tmp_path.resolve() in path.parents
    assert len(path.relative_to(tmp_path.resolve()).parts) == 4


def test_sanitize_component():
    assert sanitize_component("") == "unknown"
    assert sanitize_component(None) == "unknown"
    assert sanitize_component("..") == "__"
    assert sanitize_component("Doe^John") == "Doe^John"
    assert sanitize_component("a b/c") == "a_b_c"
    long = sanitize_component("9" * 500)
    assert len(long) == 120 and long != sanitize_component("9" * 499)


def test_number_format_and_multivalue():
    layout = Layout("{Modality}/{InstanceNumber:04d}_{SOPInstanceUID}.dcm")
    path = layout.relative_path({"Modality": ["CT", "MR"], "InstanceNumber": "7", "SOPInstanceUID": "1"})
    assert path == PurePosixPath("CT_MR/0007_1.dcm")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{NotAKeyword}/{SOPInstanceUID}", "not a DICOM keyword"),
        ("../{SOPInstanceUID}", "'..'"),
        ("/abs/{SOPInstanceUID}", "relative"),
        ("{PatientID}/", "file name"),
        ("", "file name"),
        ("{SOPInstanceUID", "expected"),
        ("{SOPInstanceUID!r}", "not a DICOM keyword"),
    ],
)
def test_bad_templates(template, message):
    with pytest.raises(UsageError, match=message):
        Layout(template)


def test_safe_join_refuses_escape(tmp_path):
    with pytest.raises(OutputError):
        safe_join(tmp_path / "out", PurePosixPath("../x"))
    with pytest.raises(OutputError):
        safe_join(tmp_path, PurePosixPath("."))
    assert safe_join(tmp_path, PurePosixPath("a/b")) == (tmp_path / "a/b").resolve()
    assert isinstance(safe_join(tmp_path, PurePosixPath("a")), Path)


TEMPLATES = [
    "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm",
    "{Modality}/{InstanceNumber:04d}.dcm",
    "flat-{SOPInstanceUID}",
    "a//./{PatientID}-x/{Modality}_{SOPInstanceUID}.dcm",
    "{PatientID}/.",
    "{PatientID}/{InstanceNumber:/>6}",
]
VALUES = [
    UIDS,
    {**UIDS, "PatientID": "../../etc", "SOPInstanceUID": "/x", "Modality": ["CT", "MR"], "InstanceNumber": "7"},
    {**UIDS, "PatientID": "P2", "Modality": "", "InstanceNumber": "x"},
    {**UIDS, "PatientID": "P1", "SOPInstanceUID": "1.2.3.5", "InstanceNumber": 12},
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_remembered_folders_give_the_path_the_template_renders(tmp_path, monkeypatch, template):
    layout = Layout(template)
    monkeypatch.chdir(tmp_path)
    for root in (tmp_path / "out", Path("relative")):
        for values in VALUES * 2:
            assert layout.path_in(root, values) == safe_join(root, layout.relative_path(values))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert layout.path_in(Path("relative"), UIDS) == safe_join(Path("relative"), layout.relative_path(UIDS))
    assert str(layout.path_in(Path("relative"), UIDS)).startswith(str(tmp_path / "elsewhere"))
