import pytest
from pydicom import Dataset
from pydicom.sequence import Sequence
from sqlalchemy import inspect, select, update

from pacskit.archive.index import Index
from pacskit.archive.schema import SCHEMA_VERSION, SchemaVersion
from pacskit.archive.worklist import DuplicateItem, StatusChangeRefused, Worklist
from pacskit.worklist import ItemStatus
from pacskit.worklist.items import checked, item_uid
from pacskit.worklist.matching import match

STATIONS = (["CT1"], ["CT1", "CT_2"], ["MR%1"], ["US1"])
MODALITIES = ("CT", "CT", "MR", "US")


def make_item(number: int, charset: str | None = None, description: str = "exam") -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PatientName = f"PATIENT^{number}"
    ds.PatientID = f"P{number % 7}"
    ds.AccessionNumber = f"A{number:04d}"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.2.{number}"
    ds.RequestedProcedureID = f"RP{number}"
    ds.RequestedProcedureDescription = description
    step = Dataset()
    step.ScheduledStationAETitle = STATIONS[number % 4]
    step.ScheduledProcedureStepStartDate = f"202612{1 + number % 28:02d}"
    step.ScheduledProcedureStepStartTime = f"{8 + number % 10:02d}{number % 60:02d}00"
    step.Modality = MODALITIES[number % 4]
    step.ScheduledProcedureStepDescription = description
    step.ScheduledProcedureStepID = f"SPS{number}"
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return checked(ds, f"item {number}")


@pytest.fixture
def worklist(tmp_path):
    index = Index.open(f"sqlite:///{tmp_path}/index.db")
    yield Worklist(index)
    index.close()


def identifier(step_keys: dict, **keys) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value or None)
    sps = Dataset()
    for keyword, value in step_keys.items():
        setattr(sps, keyword, value or None)
    ds.ScheduledProcedureStepSequence = Sequence([sps])
    return ds


QUERIES = [
    identifier({"Modality": "CT", "ScheduledProcedureStepStartDate": "20261205"}),
    identifier({"Modality": "CT", "ScheduledProcedureStepStartDate": "20261203-20261210"}),
    identifier({"ScheduledStationAETitle": "CT_2"}),
    identifier({"ScheduledStationAETitle": "MR%1"}),
    identifier({"ScheduledStationAETitle": "CT?"}),
    identifier({"Modality": ""}, PatientID="P3", AccessionNumber=""),
    identifier({"ScheduledProcedureStepStartDate": "-20261203",
                "ScheduledProcedureStepStartTime": "-0900"}, AccessionNumber="A00*"),
    identifier({"Modality": "MR"}, StudyInstanceUID="1.2.826.0.1.3680043.10.2.2\\1.2.826.0.1.3680043.10.2.6"),
]


@pytest.mark.parametrize("number", range(len(QUERIES)))
def test_the_index_answers_what_matching_every_item_answers(worklist, number):
    items = [make_item(n) for n in range(120)]
    for item in items:
        worklist.add(item, item_uid(item))
    query = QUERIES[number]
    expected = [m for m in (match(query, worklist.get(item_uid(i)).dataset) for i in items) if m is not None]
    found = list(worklist.find(query))
    assert sorted(m.to_json() for m in found) == sorted(m.to_json() for m in expected)
    assert found, "the query finds items"


def test_the_calling_station_and_the_limit(worklist):
    for n in range(40):
        item = make_item(n)
        worklist.add(item, item_uid(item))
    everything = identifier({"ScheduledStationAETitle": ""})
    mine = list(worklist.find(everything, station="CT_2"))
    assert len(mine) == 10
    assert all("CT_2" in m.ScheduledProcedureStepSequence[0].ScheduledStationAETitle for m in mine)
    assert len(list(worklist.find(everything, limit=7))) == 7


@pytest.mark.parametrize(("charset", "description", "answered"), [
    ("ISO_IR 100", "Schädel", "ISO_IR 100"),
    ("ISO_IR 100", "Głowa", "ISO_IR 192"),
    (None, "Głowa", "ISO_IR 192"),
    (None, "plain", None),
    ("ISO_IR 192", "plain", "ISO_IR 192"),
])
def test_responses_carry_the_items_character_set_or_utf8(worklist, charset, description, answered):
    item = make_item(1, charset, description)
    worklist.add(item, item_uid(item))
    response = next(worklist.find(identifier({}, RequestedProcedureDescription="")))
    assert response.get("SpecificCharacterSet") == answered
    assert response.RequestedProcedureDescription == description


def test_status_is_kept_answered_and_moves_forward(worklist):
    item = make_item(1)
    uid = item_uid(item)
    worklist.add(item, uid)
    asked = identifier({"ScheduledProcedureStepStatus": "STARTED"})
    assert list(worklist.find(asked)) == []
    assert worklist.set_status(uid, ItemStatus.STARTED).status is ItemStatus.STARTED
    assert len(list(worklist.find(asked))) == 1
    with pytest.raises(StatusChangeRefused):
        worklist.set_status(uid, ItemStatus.SCHEDULED)
    worklist.set_status(uid, ItemStatus.COMPLETED)
    assert list(worklist.find(identifier({}))) == []
    assert worklist.get(uid).dataset.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "COMPLETED"


def test_a_step_is_on_the_worklist_once(worklist):
    item = make_item(1)
    worklist.add(item, item_uid(item))
    with pytest.raises(DuplicateItem):
        worklist.add(make_item(1), item_uid(item))
    worklist.add(make_item(1, description="changed"), item_uid(item), replace=True)
    assert [i.dataset.RequestedProcedureDescription for i in worklist.items()] == ["changed"]


def test_an_index_of_schema_version_2_gets_the_worklist_table(tmp_path):
    url = f"sqlite:///{tmp_path}/index.db"
    index = Index.open(url)
    with index.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE worklist_item")
        conn.execute(update(SchemaVersion).values(version=2))
    index.close()
    reopened = Index.open(url)
    try:
        assert "worklist_item" in inspect(reopened.engine).get_table_names()
        with reopened.engine.connect() as conn:
            assert conn.scalar(select(SchemaVersion.version)) == SCHEMA_VERSION
        assert Worklist(reopened).items() == []
    finally:
        reopened.close()
