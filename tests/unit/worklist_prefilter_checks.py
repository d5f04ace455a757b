"""Checks of the worklist's SQL prefilter and of its encoded answers, run on SQLite
(tests/unit/test_worklist_prefilter.py) and PostgreSQL
(tests/integration/test_worklist_prefilter_postgres.py): over a generated item set, with
irregular items among them, every generated query answers exactly what matching every
item answers, and every answer's bytes are pydicom's encoding of its dataset."""

from __future__ import annotations

import random

from pydicom import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from sqlalchemy import text

from pacskit.archive.index import Index
from pacskit.archive.schema import SchemaVersion
from pacskit.archive.worklist import Worklist
from pacskit.net.identifier import encode_identifier
from pacskit.worklist import ItemStatus
from pacskit.worklist.items import checked, item_uid
from pacskit.worklist.matching import IdentifierError, check_identifier, match, values_of

SEED = 13
ITEMS = 90
QUERIES = 260
MODALITIES = ["CT", "MR", "US", "C_", "CT%"]
STATIONS = ["CT1", "CT_2", "MR%1", "US|1", "ct1"]
DATES = ["20261201", "20261202", "20261203", "20261210", "20261231"]
PATIENTS = ["P1", "P2", "P_3", "p1"]


def generated_items(rng: random.Random) -> list[Dataset]:
    """Regular items and irregular ones: several values of a key, a value too long for
    its column, a date that is not YYYYMMDD; Latin-1 and UTF-8 text, and text that the
    item's character set cannot hold."""
    made = []
    for number in range(ITEMS):
        ds = Dataset()
        charset, description = rng.choice([(None, "plain"), ("ISO_IR 100", "Schädel"),
                                           ("ISO_IR 192", "Głowa"), ("ISO_IR 100", "Głowa")])
        if charset:
            ds.SpecificCharacterSet = charset
        ds.PatientName = f"PATIENT^{number}"
        ds.PatientID = rng.choice(PATIENTS)
        ds.AccessionNumber = rng.choice(["", f"A{number % 9}"])
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.2.{number % 30}"
        ds.RequestedProcedureID = f"RP{number}"
        ds.RequestedProcedureDescription = description
        step = Dataset()
        step.ScheduledStationAETitle = rng.sample(STATIONS, rng.choice([1, 1, 2]))
        step.ScheduledProcedureStepStartDate = rng.choice(DATES)
        step.ScheduledProcedureStepStartTime = rng.choice(["0800", "093000", "1200", "235959.5"])
        step.Modality = rng.choice(MODALITIES)
        step.ScheduledProcedureStepDescription = description
        step.ScheduledProcedureStepID = f"SPS{number}"
        step.ScheduledPerformingPhysicianName = rng.choice(["", "SMITH^J", "smith^j"])
        ds.ScheduledProcedureStepSequence = Sequence([step])
        item = checked(ds, f"item {number}")
        step = item.ScheduledProcedureStepSequence[0]
        odd = rng.randrange(8)
        if odd == 0:
            step.Modality = rng.sample(MODALITIES, 2)
        elif odd == 1:
            step.Modality = "MODALITYLONGERTHAN16"
        elif odd == 2:
            item.PatientID = rng.sample(PATIENTS, 2)
        elif odd == 3:
            step.ScheduledProcedureStepStartDate = rng.choice(["2026.12.02", ["20261202", "20261210"]])
        elif odd == 4:
            item.StudyInstanceUID = ["1.2.826.0.1.3680043.10.2.1", "1.2.826.0.1.3680043.10.2.2"]
        made.append(item)
    return made


def generated_query(rng: random.Random) -> Dataset:
    """A query with any of the keys the prefilter reads, by single value, wildcard,
    list, range, universal matching or none, and a key sequence that may be empty."""
    ds = Dataset()
    ds.PatientName = ""
    top = {
        "PatientID": PATIENTS + ["", "*", "P?", "P*", "X"],
        "AccessionNumber": ["", "A1", "A*", "*"],
        "StudyInstanceUID": ["", "1.2.826.0.1.3680043.10.2.1",
                             "1.2.826.0.1.3680043.10.2.2\\1.2.826.0.1.3680043.10.2.9"],
    }
    for keyword, choices in top.items():
        if rng.random() < 0.5:
            setattr(ds, keyword, rng.choice(choices) or None)
    if rng.random() < 0.15:
        return ds
    step = Dataset()
    date = rng.choice([None, "", "*", *DATES, "20261202-20261210", "20261203-", "-20261202",
                       "20261201-20261201"])
    step_keys = {
        "Modality": ["", "*", "C?", "C*", "MODALITYLONGERTHAN16", *MODALITIES],
        "ScheduledStationAETitle": ["", "*", "CT?", *STATIONS],
        "ScheduledProcedureStepStartTime": ["", "0800-1200", "-0930", "1000-", "093000"],
        "ScheduledPerformingPhysicianName": ["", "SMITH*"],
    }
    if date is not None:
        step.ScheduledProcedureStepStartDate = date or None
    for keyword, choices in step_keys.items():
        if rng.random() < 0.45:
            setattr(step, keyword, rng.choice(choices) or None)
    ds.ScheduledProcedureStepSequence = Sequence([step] if rng.random() < 0.9 else [])
    return ds


def loaded(index: Index, rng: random.Random) -> tuple[Worklist, list[Dataset]]:
    worklist = Worklist(index)
    items = generated_items(rng)
    for number, item in enumerate(items):
        uid = item_uid(item)
        worklist.add(item, uid)
        if number % 11 == 0:
            worklist.set_status(uid, ItemStatus.STARTED)
        elif number % 17 == 0:
            worklist.set_status(uid, ItemStatus.COMPLETED)
    answered = [s.dataset for s in worklist.items() if s.status.is_answered]
    return worklist, answered


def full_scan(query: Dataset, items: list[Dataset], station: str | None = None) -> list[dict]:
    """What matching every item answers, the prefilter's reference."""
    found = []
    for item in items:
        step = item.ScheduledProcedureStepSequence[0]
        if station is not None and station not in values_of(step["ScheduledStationAETitle"]):
            continue
        response = match(query, item)
        if response is not None:
            found.append(response)
    return sorted(_comparable(r) for r in found)


def _comparable(response: Dataset) -> str:
    response = Dataset(response)
    response.pop("SpecificCharacterSet", None)
    return response.to_json()


def check_the_prefilter_answers_what_matching_every_item_answers(index: Index) -> None:
    rng = random.Random(SEED)
    worklist, items = loaded(index, rng)
    asked = 0
    found_some = 0
    while asked < QUERIES:
        query = generated_query(rng)
        try:
            check_identifier(query)
        except IdentifierError:
            continue
        asked += 1
        station = rng.choice([None, None, None, "CT_2", "MR%1", "ct1"])
        answered = sorted(_comparable(r) for r in worklist.find(query, station=station))
        assert answered == full_scan(query, items, station), query
        found_some += bool(answered)
    assert found_some > QUERIES // 3, "most queries find items"


def check_answers_are_pydicoms_encoding_of_their_dataset(index: Index) -> None:
    rng = random.Random(SEED + 1)
    worklist, _ = loaded(index, rng)
    joined = 0
    for _ in range(60):
        query = generated_query(rng)
        try:
            check_identifier(query)
        except IdentifierError:
            continue
        for answer in worklist.answers(query):
            dataset = answer.dataset()
            for syntax in (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian):
                assert answer.encoded(syntax) == encode_identifier(dataset, syntax)
            joined += answer.record.simple
    assert joined > 100, "answers were joined from encoded elements"


def check_an_index_of_schema_version_4_marks_its_irregular_items(index: Index) -> None:
    """A version 4 index kept an item's first modality only; after the upgrade the item
    is found by its second one."""
    rng = random.Random(SEED)
    item = generated_items(rng)[0]
    step = item.ScheduledProcedureStepSequence[0]
    step.Modality = ["CT", "MR"]
    worklist = Worklist(index)
    worklist.add(item, item_uid(item))
    with index.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_worklist_item_irregular"))
        conn.execute(text("ALTER TABLE worklist_item DROP COLUMN irregular"))
        conn.execute(SchemaVersion.__table__.update().values(version=4))
    url = index.engine.url.render_as_string(hide_password=False)
    index.close()
    reopened = Index.open(url)
    try:
        query = Dataset()
        sps = Dataset()
        sps.Modality = "MR"
        query.ScheduledProcedureStepSequence = Sequence([sps])
        assert [r.ScheduledProcedureStepSequence[0].Modality for r in Worklist(reopened).find(query)] == [["CT", "MR"]]
    finally:
        reopened.close()


CHECKS = [check_the_prefilter_answers_what_matching_every_item_answers,
          check_answers_are_pydicoms_encoding_of_their_dataset,
          check_an_index_of_schema_version_4_marks_its_irregular_items]
