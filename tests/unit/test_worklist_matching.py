import datetime as dt

import pytest
from matching_cases import MATCHING_CASES
from pydicom import Dataset
from pydicom.sequence import Sequence

from pacskit.errors import QueryError
from pacskit.privacy import PrivacyPolicy
from pacskit.worklist import ItemStatus, WorklistQuery
from pacskit.worklist.items import InvalidItem, from_fields, from_json, item_uid, missing_attributes
from pacskit.worklist.matching import IdentifierError, check_identifier, match


def dataset_of(attributes: dict) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        if value is not None:
            setattr(ds, keyword, value)
    return ds


def step(**attributes) -> Dataset:
    return dataset_of(attributes)


def item(*steps: Dataset, **attributes) -> Dataset:
    ds = dataset_of(attributes)
    ds.ScheduledProcedureStepSequence = Sequence(list(steps))
    return ds


def query(step_keys: dict | None = None, **keys) -> Dataset:
    ds = dataset_of({k: v or None for k, v in keys.items()})
    for keyword, value in keys.items():
        if not value:
            setattr(ds, keyword, None)
    if step_keys is not None:
        sps = Dataset()
        for keyword, value in step_keys.items():
            setattr(sps, keyword, value or None)
        ds.ScheduledProcedureStepSequence = Sequence([sps])
    return ds


CASES = [c for c in MATCHING_CASES if not any(k in ("ModalitiesInStudy",) for k in c[1])]


@pytest.mark.parametrize(("match_keys", "attributes", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_worklist_matching_follows_ps3_4_c2_2_2_at_the_top_level(match_keys, attributes, expected):
    identifier = dataset_of({k: v or None for k, v in match_keys.items()})
    for keyword, value in match_keys.items():
        if not value:
            setattr(identifier, keyword, None)
    assert (match(identifier, dataset_of(attributes)) is not None) is expected


@pytest.mark.parametrize(("match_keys", "attributes", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_worklist_matching_follows_ps3_4_c2_2_2_inside_the_step(match_keys, attributes, expected):
    identifier = query(match_keys)
    record = item(dataset_of(attributes))
    assert (match(identifier, record) is not None) is expected


def test_a_record_matches_only_if_one_item_of_its_sequence_matches_every_item_key():
    record = item(step(Modality="CT", ScheduledStationAETitle="CT1"),
                  step(Modality="MR", ScheduledStationAETitle="MR1"))
    assert match(query({"Modality": "CT", "ScheduledStationAETitle": "MR1"}), record) is None
    response = match(query({"Modality": "MR", "ScheduledStationAETitle": ""}), record)
    assert [(s.Modality, s.ScheduledStationAETitle) for s in response.ScheduledProcedureStepSequence] == \
        [("MR", "MR1")]


def test_only_the_requested_attributes_of_the_matching_items_are_returned():
    record = item(step(Modality="CT", ScheduledStationAETitle="CT1", ScheduledStationName="ROOM 1"),
                  PatientID="P1", AccessionNumber="A1")
    response = match(query({"Modality": "CT"}, PatientID=""), record)
    assert set(response.dir()) == {"PatientID", "ScheduledProcedureStepSequence"}
    assert set(response.ScheduledProcedureStepSequence[0].dir()) == {"Modality"}


def test_an_empty_key_sequence_returns_the_whole_sequence():
    record = item(step(Modality="CT", ScheduledStationName="ROOM 1"), PatientID="P1")
    identifier = query(PatientID="")
    identifier.ScheduledProcedureStepSequence = Sequence([Dataset()])
    response = match(identifier, record)
    assert response.ScheduledProcedureStepSequence[0].ScheduledStationName == "ROOM 1"
    identifier.ScheduledProcedureStepSequence = Sequence([])
    assert match(identifier, record).ScheduledProcedureStepSequence[0].Modality == "CT"


def test_return_keys_the_item_lacks_come_back_empty():
    record = item(step(Modality="CT"), PatientID="P1")
    identifier = query({"Modality": "", "ScheduledStationName": ""}, PatientID="", AccessionNumber="")
    identifier.ReferencedStudySequence = Sequence([])
    response = match(identifier, record)
    assert "AccessionNumber" in response and response.AccessionNumber in (None, "")
    assert "ReferencedStudySequence" in response and len(response.ReferencedStudySequence) == 0
    assert response.ScheduledProcedureStepSequence[0].ScheduledStationName in (None, "")


def test_a_key_sequence_with_keys_but_no_record_sequence_fails_only_if_a_key_constrains():
    record = dataset_of({"PatientID": "P1"})
    assert match(query({"Modality": "CT"}), record) is None
    response = match(query({"Modality": ""}), record)
    assert response is not None and len(response.ScheduledProcedureStepSequence) == 0


def test_nested_sequences_are_matched_recursively():
    code = dataset_of({"CodeValue": "CT-HEAD", "CodingSchemeDesignator": "LOCAL"})
    record = item(step(Modality="CT", ScheduledProtocolCodeSequence=Sequence([code])))
    inner = Dataset()
    inner.CodeValue = "CT-HEAD"
    wanted = query({"Modality": ""})
    wanted.ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence = Sequence([inner])
    assert match(wanted, record) is not None
    inner.CodeValue = "CT-CHEST"
    assert match(wanted, record) is None


@pytest.mark.parametrize(("dates", "times", "when", "expected"), [
    # both ranges of one shape: one date-time range
    ("20261201-20261202", "2200-0600", ("20261201", "230000"), True),
    ("20261201-20261202", "2200-0600", ("20261202", "120000"), False),
    ("20261201-20261202", "2200-0600", ("20261201", "120000"), False),
    ("20261201-20261203", "2200-0600", ("20261202", "120000"), True),
    ("20261201-", "2200-", ("20261201", "210000"), False),
    ("20261201-", "2200-", ("20261202", "010000"), True),
    # a date and a time range: each alone
    ("20261201", "0800-1200", ("20261201", "0930"), True),
    ("20261201", "0800-1200", ("20261201", "1330"), False),
    ("20261201", "0800-1200", ("20261202", "0930"), False),
    # shapes differ: each alone
    ("20261201-20261203", "0800-", ("20261202", "0700"), False),
])
def test_scheduled_date_and_time_ranges_are_combined_when_both_are_ranges(dates, times, when, expected):
    record = item(step(ScheduledProcedureStepStartDate=when[0], ScheduledProcedureStepStartTime=when[1]))
    identifier = query({"ScheduledProcedureStepStartDate": dates, "ScheduledProcedureStepStartTime": times})
    assert (match(identifier, record) is not None) is expected


def test_a_multi_valued_station_ae_matches_on_any_value():
    record = item(step(ScheduledStationAETitle=["AA32", "AA33"]))
    response = match(query({"ScheduledStationAETitle": "AA33"}), record)
    assert list(response.ScheduledProcedureStepSequence[0].ScheduledStationAETitle) == ["AA32", "AA33"]


def test_a_key_sequence_of_two_items_is_not_a_worklist_query():
    identifier = query({"Modality": "CT"})
    identifier.ScheduledProcedureStepSequence.append(step(Modality="MR"))
    with pytest.raises(IdentifierError) as raised:
        check_identifier(identifier)
    assert raised.value.offending == "ScheduledProcedureStepSequence"
    assert "PS3.4 C.2.2.2.6" in str(raised.value)


@pytest.mark.parametrize("keys", [{"ScheduledProcedureStepStartDate": "2026-12-01"},
                                  {"ScheduledProcedureStepStartTime": "12345"},
                                  {"ScheduledProcedureStepStartDate": "2026120*"}])
def test_a_malformed_value_is_not_a_worklist_query(keys):
    with pytest.raises(IdentifierError):
        check_identifier(query(keys))


def test_the_options_make_the_identifier():
    built = WorklistQuery.build(station_aet="CT1", modality="CT", date="today-",
                                keys=["ScheduledProcedureStepSequence.ScheduledStationName=ROOM*",
                                      "RequestedProcedurePriority"],
                                today=dt.date(2026, 12, 1))
    identifier = built.to_identifier()
    sps = identifier.ScheduledProcedureStepSequence
    assert len(sps) == 1
    assert sps[0].ScheduledStationAETitle == "CT1" and sps[0].Modality == "CT"
    assert sps[0].ScheduledProcedureStepStartDate == "20261201-"
    assert sps[0].ScheduledStationName == "ROOM*"
    assert "RequestedProcedurePriority" in identifier and "PatientID" in identifier
    assert "PatientName" not in identifier
    assert "PatientName" in built.to_identifier(PrivacyPolicy(allow_patient_names=True))


@pytest.mark.parametrize(("options", "message"), [
    ({"date": "2026121"}, "not a valid DA"),
    ({"keys": ["PatientID.Modality=CT"]}, "not a sequence"),
    ({"keys": ["NoSuchKeyword=1"]}, "unknown keyword"),
    ({"modality": "CT", "keys": ["ScheduledProcedureStepSequence.Modality=MR"]}, "given twice"),
    ({"keys": ["PatientName=DOE*"]}, "needs patient names"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(QueryError, match=message):
        WorklistQuery.build(**options).to_identifier()


def _complete_fields() -> dict[str, str]:
    return {"PatientID": "P1", "PatientName": "DOE^JANE", "StudyInstanceUID": "1.2.3",
            "RequestedProcedureID": "RP1", "RequestedProcedureDescription": "CT head",
            "ScheduledProcedureStepSequence.ScheduledStationAETitle": "CT1",
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate": "20261201",
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime": "0930",
            "ScheduledProcedureStepSequence.Modality": "CT",
            "ScheduledProcedureStepSequence.ScheduledProcedureStepID": "SPS1",
            "ScheduledProcedureStepSequence.ScheduledProcedureStepDescription": "CT head"}


def test_a_complete_item_is_taken_and_named_by_its_step():
    first = from_fields(_complete_fields())
    assert missing_attributes(first) == []
    again = from_fields(_complete_fields())
    assert item_uid(first) == item_uid(again)
    other = from_fields({**_complete_fields(), "ScheduledProcedureStepSequence.ScheduledProcedureStepID": "SPS2"})
    assert item_uid(other) != item_uid(first)


@pytest.mark.parametrize(("dropped", "reported"), [
    ("PatientID", "PatientID"),
    ("ScheduledProcedureStepSequence.Modality", "ScheduledProcedureStepSequence>Modality"),
    ("ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime",
     "ScheduledProcedureStepSequence>ScheduledProcedureStepStartTime"),
    ("RequestedProcedureDescription", "RequestedProcedureDescription or RequestedProcedureCodeSequence"),
])
def test_an_item_lacking_a_type_1_attribute_is_refused_with_its_name(dropped, reported):
    fields = {k: v for k, v in _complete_fields().items() if k != dropped}
    with pytest.raises(InvalidItem, match=reported.replace(">", ">")):
        from_fields(fields)


def test_an_item_with_two_steps_is_refused():
    document = from_fields(_complete_fields()).to_json_dict()
    steps = document["00400100"]["Value"]
    document["00400100"]["Value"] = steps + steps
    with pytest.raises(InvalidItem, match="one item, not 2"):
        from_json(document, "item.json")


def test_non_ascii_fields_are_kept_in_utf8():
    item_ = from_fields({**_complete_fields(), "RequestedProcedureDescription": "Schädel"})
    assert item_.SpecificCharacterSet == "ISO_IR 192"


@pytest.mark.parametrize(("start", "end", "allowed"), [
    (ItemStatus.SCHEDULED, ItemStatus.STARTED, True),
    (ItemStatus.SCHEDULED, ItemStatus.COMPLETED, True),
    (ItemStatus.SCHEDULED, ItemStatus.DISCONTINUED, True),
    (ItemStatus.STARTED, ItemStatus.COMPLETED, True),
    (ItemStatus.STARTED, ItemStatus.SCHEDULED, False),
    (ItemStatus.COMPLETED, ItemStatus.DISCONTINUED, False),
    (ItemStatus.DISCONTINUED, ItemStatus.STARTED, False),
])
def test_an_item_status_moves_forward_only(start, end, allowed):
    assert start.can_become(end) is allowed


def test_final_statuses_are_not_answered():
    assert ItemStatus.answered() == (ItemStatus.SCHEDULED, ItemStatus.STARTED)
