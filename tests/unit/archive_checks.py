"""Checks of the archive index that every database backend must pass (SQLite in the unit
tests, PostgreSQL in the integration tests)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from matching_cases import MATCHING_CASES
from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import inspect, text

from pacskit.archive.commitment_store import CHECKED, RECEIVED, Transactions
from pacskit.archive.index import Index
from pacskit.archive.schema import SchemaVersion
from pacskit.commitment import Reference, Report
from pacskit.query import Level, Query

CT = "1.2.840.10008.5.1.4.1.1.2"


def instance(**attributes) -> Dataset:
    """A header with a whole hierarchy; ``attributes`` override (None deletes)."""
    ds = Dataset()
    ds.PatientID = "P0"
    ds.PatientName = "Doe^John"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = CT
    ds.Modality = "CT"
    for keyword, value in attributes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def add(index: Index, ds: Dataset, policy: str = "keep"):
    return index.add(ds, path=f"{ds.SOPInstanceUID}.dcm", size=100,
                     transfer_syntax=ExplicitVRLittleEndian, policy=policy)


def check_matching_case(index: Index, case: tuple) -> None:
    """One row of the PS3.4 C.2.2.2 table: the archive finds the instance iff expected."""
    _, match, attributes, expected = case
    attributes = dict(attributes)
    modalities = attributes.pop("ModalitiesInStudy", None)
    study = attributes.pop("StudyInstanceUID", None) or generate_uid()
    if modalities:
        for modality in modalities:
            add(index, instance(StudyInstanceUID=study, Modality=modality, **attributes))
    else:
        add(index, instance(StudyInstanceUID=study, **attributes))
    found = list(index.find(Query(level=Level.IMAGE, match=match)))
    assert bool(found) is expected, (case[0], found)


def check_all_matching_cases(make_index) -> None:
    for case in MATCHING_CASES:
        index = make_index()
        try:
            check_matching_case(index, case)
        finally:
            index.close()


def check_hierarchy_and_counts(index: Index) -> None:
    study = generate_uid()
    series = [generate_uid(), generate_uid()]
    for i in range(5):
        add(index, instance(PatientID="P1", StudyInstanceUID=study, SeriesInstanceUID=series[i % 2],
                            Modality=["CT", "MR"][i % 2], StudyDate="20240115"))
    add(index, instance(PatientID="P1", StudyDate="20230101"))
    (found,) = index.find(Query(level="study", match={"StudyInstanceUID": study},
                                return_keys=("NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
                                             "ModalitiesInStudy", "StudyDate")))
    assert found.NumberOfStudyRelatedSeries == 2 and found.NumberOfStudyRelatedInstances == 5
    assert list(found.ModalitiesInStudy) == ["CT", "MR"] and found.StudyDate == "20240115"
    (patient,) = index.find(Query(level="patient", model="patient", match={"PatientID": "P1"},
                                  return_keys=("NumberOfPatientRelatedStudies", "NumberOfPatientRelatedInstances")))
    assert (patient.NumberOfPatientRelatedStudies, patient.NumberOfPatientRelatedInstances) == (2, 6)
    series_rows = list(index.find(Query(level="series", match={"StudyInstanceUID": study, "Modality": ""})))
    assert sorted(s.Modality for s in series_rows) == ["CT", "MR"]
    assert all(s.StudyInstanceUID == study for s in series_rows)
    assert len(list(index.instances(Query(level="study", match={"StudyInstanceUID": study})))) == 5
    assert len(list(index.instances(Query(level="patient", model="patient", match={"PatientID": "P1"})))) == 6
    assert index.count() == 6


def check_duplicates_never_make_two_rows(index: Index) -> None:
    ds = instance(PatientID="DUP")
    first = add(index, ds)
    again = add(index, ds, policy="keep")
    assert (first.existed, again.existed, again.path) == (False, True, first.path)
    ds.StudyDescription = "changed"
    replaced = index.add(ds, path="elsewhere.dcm", size=1, transfer_syntax=ExplicitVRLittleEndian,
                         policy="overwrite")
    assert (replaced.existed, replaced.replaced_path) == (True, first.path)
    assert index.path_of(ds.SOPInstanceUID) == "elsewhere.dcm"
    assert index.count() == 1
    (study,) = index.find(Query(level="study", match={"PatientID": "DUP"},
                                return_keys=("NumberOfStudyRelatedInstances",)))
    assert study.NumberOfStudyRelatedInstances == 1


def check_sql_characters_match_literally(index: Index) -> None:
    for value in ("A%B", "A_B", "O'Brien", "back\\slash", "AxB"):
        add(index, instance(PatientID=value.replace("\\", "/"), AccessionNumber=value[:16]))
    assert [d.PatientID for d in index.find(Query(level="study", match={"PatientID": "A%B"}))] == ["A%B"]
    assert [d.PatientID for d in index.find(Query(level="study", match={"PatientID": "A_B"}))] == ["A_B"]
    assert [d.PatientID for d in index.find(Query(level="study", match={"PatientID": "O'Brien"}))] == ["O'Brien"]
    assert sorted(d.PatientID for d in index.find(Query(level="study", match={"PatientID": "A?B"}))) == \
        ["A%B", "A_B", "AxB"]
    assert [d.PatientID for d in index.find(Query(level="study", match={"PatientID": "A%*"}))] == ["A%B"]
    assert index.count() == 5


def check_limit_and_streaming(index: Index) -> None:
    study = generate_uid()
    for _ in range(120):
        add(index, instance(StudyInstanceUID=study))
    results = index.find(Query(level="image", match={"StudyInstanceUID": study}))
    assert next(results).SOPInstanceUID
    assert len(list(index.find(Query(level="image", match={}), limit=7))) == 7
    assert len(list(index.find(Query(level="image", match={"StudyInstanceUID": study}, limit=3)))) == 3


def check_non_ascii_round_trips(index: Index) -> None:
    add(index, instance(PatientID="PÜ", SpecificCharacterSet="ISO_IR 192", PatientName="Müller^Jürgen",
                        StudyDescription="Thorax ÄÖ"))
    (found,) = index.find(Query(level="study", match={"PatientID": "PÜ", "PatientName": "",
                                                      "StudyDescription": "Thorax*"}))
    assert str(found.PatientName) == "Müller^Jürgen"
    assert found.SpecificCharacterSet == "ISO_IR 192"


def check_concurrent_adds_of_one_new_study(index: Index) -> None:
    study, series = generate_uid(), generate_uid()
    headers = [instance(PatientID="RACE", StudyInstanceUID=study, SeriesInstanceUID=series)
               for _ in range(40)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda ds: add(index, ds), headers))
    (found,) = index.find(Query(level="study", match={"PatientID": "RACE"},
                                return_keys=("NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries")))
    assert (found.NumberOfStudyRelatedInstances, found.NumberOfStudyRelatedSeries) == (40, 1)


def check_remove_drops_empty_parents(index: Index) -> None:
    ds = instance(PatientID="GONE")
    add(index, ds)
    assert index.remove(ds.SOPInstanceUID) == f"{ds.SOPInstanceUID}.dcm"
    assert index.remove(ds.SOPInstanceUID) is None
    assert not list(index.find(Query(level="patient", model="patient", match={"PatientID": "GONE"})))


def check_crc32_and_commitment_transactions(index: Index) -> None:
    """The CRC-32 kept with an instance, and a commitment transaction from its request
    to its delivery (schema version 4)."""
    ds = instance()
    index.add(ds, path="a.dcm", size=100, transfer_syntax=ExplicitVRLittleEndian, crc32=0xFFFFFFFF)
    assert index.instance(ds.SOPInstanceUID).crc32 == 0xFFFFFFFF
    store = Transactions(index)
    asked = [Reference(CT, ds.SOPInstanceUID)]
    first = store.receive("1.2.3.9", "MODALITY", asked)
    again = store.receive("1.2.3.9", "MODALITY", asked)
    assert (first.duplicate, again.duplicate) == (False, True)
    store.checked(first, Report("1.2.3.9", asked))
    assert [(t.id, t.state) for t in store.undelivered()] == [(first.id, CHECKED), (again.id, RECEIVED)]
    assert store.attempt_failed(first.id, "connection refused") == 1
    store.delivered(first.id)
    assert [t.id for t in store.undelivered()] == [again.id]
    assert store.get(first.id).report.committed == asked


def check_ordering_and_counts(index: Index) -> None:
    """Matches sorted before paging: a page of the date-ordered list holds the studies
    that come there in the whole list, not the indexed order's page sorted; and the
    count of a search is the number of its matches, filtered or not."""
    studies = [("20240105", "090000", "Knee", "Zed^A", "ACC3"), ("20240105", "170000", "brain", "Alpha^B", "ACC1"),
               ("20231231", "235959", "Abdomen", "Mid^C", "ACC2"), ("", "", "", "", "ACC0"),
               ("20250101", "000000", "Chest", "Beta^D", "ACC4")]
    uids = []
    for number, (date, time, description, name, accession) in enumerate(studies):
        ds = instance(PatientID=f"ORD{'31402'[number]}", StudyDate=date or None, StudyTime=time or None,
                      StudyDescription=description or None, PatientName=name or None, AccessionNumber=accession)
        uids.append(ds.StudyInstanceUID)
        for _ in range(number + 1):
            add(index, instance(**{k: ds.get(k) for k in ("PatientID", "PatientName", "StudyInstanceUID",
                                                           "StudyDate", "StudyTime", "StudyDescription",
                                                           "AccessionNumber")}))
    everything = Query(level="study", match={"PatientID": "ORD*"})

    def page(order, offset=0, limit=None, match=everything):
        return [uids.index(d.StudyInstanceUID) for d in index.find(match, order=order, offset=offset, limit=limit)]

    newest = [("StudyDate", True), ("StudyTime", True)]
    assert page(newest) == [4, 1, 0, 2, 3]
    assert page(newest, offset=1, limit=2) == [1, 0]
    assert page([("StudyDate", False), ("StudyTime", False)]) == [3, 2, 0, 1, 4]
    assert page([("AccessionNumber", False)]) == [3, 1, 2, 0, 4]
    assert page([("NumberOfStudyRelatedInstances", True)]) == [4, 3, 2, 1, 0]
    assert page([("PatientName", False)]) == [3, 1, 4, 2, 0]
    assert page([("StudyDescription", True)])[:2] == [0, 4]
    assert page([("PatientID", True)], offset=3) == [1, 3]
    assert index.count_matches(everything) == 5
    assert index.count_matches(Query(level="study", match={"PatientID": "ORD1"})) == 1
    assert index.count_matches(Query(level="study", match={"StudyInstanceUID": "\\".join(uids[:3])})) == 3
    assert index.count_matches(Query(level="series", match={"StudyInstanceUID": uids[4]})) == 5
    assert index.count_matches(Query(level="image", match={"StudyInstanceUID": uids[4]})) == 5


def check_an_index_of_schema_version_5_gains_study_times(index: Index) -> None:
    """A version 5 index had no study time column; after the upgrade each study's time
    is read from its attributes and the newest-first order holds."""
    early, late = instance(StudyDate="20240101", StudyTime="080000"), instance(StudyDate="20240101", StudyTime="200000")
    for ds in (late, early, instance(StudyDate="20240101", StudyTime=None)):
        add(index, ds)
    with index.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_study_date_time"))
        conn.execute(text("ALTER TABLE study DROP COLUMN study_time"))
        conn.execute(SchemaVersion.__table__.update().values(version=5))
    url = index.engine.url.render_as_string(hide_password=False)
    index.close()
    reopened = Index.open(url)
    try:
        newest = [d.get("StudyTime") or "" for d in reopened.find(Query(level="study", return_keys=["StudyTime"]),
                                                     order=[("StudyDate", True), ("StudyTime", True)])]
        assert newest == ["200000", "080000", ""]
        assert "ix_study_date_time" in {i["name"] for i in inspect(reopened.engine).get_indexes("study")}
    finally:
        reopened.close()


CHECKS = [check_ordering_and_counts, check_an_index_of_schema_version_5_gains_study_times, check_hierarchy_and_counts, check_duplicates_never_make_two_rows,
          check_sql_characters_match_literally, check_limit_and_streaming,
          check_non_ascii_round_trips, check_concurrent_adds_of_one_new_study,
          check_remove_drops_empty_parents, check_crc32_and_commitment_transactions]
