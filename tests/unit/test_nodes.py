import pytest

from pacskit.errors import InvalidAddress
from pacskit.nodes import Node


@pytest.mark.parametrize(
    ("address", "aet", "host", "port"),
    [
        ("dicom://ORTHANC@127.0.0.1:4242", "ORTHANC", "127.0.0.1", 4242),
        ("dicom://PACS@pacs.example.org", "PACS", "pacs.example.org", 104),
        ("dicom://A@[::1]:11112", "A", "::1", 11112),
        ("dicom://A B@h:1/", "A B", "h", 1),
    ],
)
def test_parse_inline_address(address, aet, host, port):
    node = Node.parse(address)
    assert (node.ae_title, node.host, node.port) == (aet, host, port)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("dicom://@h:1", "empty"),
        ("dicom://ABCDEFGHIJKLMNOPQ@h:1", "longer than 16"),
        ("dicom://A\\B@h:1", "backslash"),
        ("dicom://A@h:0", "out of range"),
        ("dicom://A@h:65536", "out of range"),
        ("dicom://A@h:port", "not a number"),
        ("dicom://A@:104", "no host"),
        ("dicom://Ab\x01@h:1", "control"),
        ("dicom:/A@h:1", "expected dicom://AET@host:port"),
        ("http://A@h:1", "expected dicom://AET@host:port"),
    ],
)
def test_malformed_addresses_are_rejected_with_a_reason(address, message):
    with pytest.raises(InvalidAddress, match=message):
        Node.parse(address)


def test_create_validates_fields():
    with pytest.raises(InvalidAddress, match="port"):
        Node.create(ae_title="A", host="h", port=70000)
    with pytest.raises(InvalidAddress, match="ae_title"):
        Node.create(ae_title="x" * 17, host="h", port=1)


def test_labels():
    assert Node.parse("dicom://A@h:1").label == "A@h:1"
    named = Node(ae_title="A", host="h", port=1, name="pacs")
    assert named.label == "pacs"
    assert named.description == "pacs (A@h:1)"
