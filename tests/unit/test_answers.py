"""Checking a peer's answers against the query (pure logic): what is dropped, what cannot
be checked, and how it is told."""

from __future__ import annotations

import pytest
from pydicom import Dataset

from pacskit.answers import AnswerChecker, Verdict, check_answer
from pacskit.models import AnswerCheck
from pacskit.query import Level, Query


def answer(**attributes) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize(("keys", "attributes", "verdict"), [
    ({"ModalitiesInStudy": "MR"}, {"ModalitiesInStudy": ["CT", "MR"]}, Verdict()),
    ({"ModalitiesInStudy": "MR"}, {"ModalitiesInStudy": ["CT", "US"]}, Verdict(failed=("ModalitiesInStudy",))),
    ({"ModalitiesInStudy": "MR"}, {"ModalitiesInStudy": ""}, Verdict(unchecked=("ModalitiesInStudy",))),
    ({"ModalitiesInStudy": "MR"}, {}, Verdict(unchecked=("ModalitiesInStudy",))),
    ({"InstitutionName": "NORTH*"}, {"InstitutionName": "NORTH WING"}, Verdict()),
    ({"InstitutionName": "NORTH*"}, {"InstitutionName": "north wing"}, Verdict(failed=("InstitutionName",))),
    ({"StudyDate": "20240101-20240131"}, {"StudyDate": "20240201"}, Verdict(failed=("StudyDate",))),
    ({"StudyInstanceUID": "1.2\\1.3"}, {"StudyInstanceUID": "1.3"}, Verdict()),
    ({"ReferringPhysicianName": "SMITH"}, {"ReferringPhysicianName": "Smith^John"}, Verdict()),
    ({"ReferringPhysicianName": "john"}, {"ReferringPhysicianName": "Smith^John"}, Verdict()),
    ({"ReferringPhysicianName": "JONES*"}, {"ReferringPhysicianName": "Smith^John"},
     Verdict(failed=("ReferringPhysicianName",))),
    ({"AccessionNumber": "A1", "StudyID": "7"}, {"AccessionNumber": "A2"},
     Verdict(failed=("AccessionNumber",), unchecked=("StudyID",))),
])
def test_each_key_is_matched_failed_or_unchecked(keys, attributes, verdict):
    assert check_answer(keys, answer(**attributes)) == verdict


def test_the_checker_counts_drops_and_unverified_answers_and_fills_modalities_from_series():
    query = Query.build("study", modality="MR", keys=["InstitutionName=NORTH"])
    check = AnswerCheck(level=Level.STUDY)
    checker = AnswerChecker(query, check)
    north, south = answer(InstitutionName="NORTH"), answer(InstitutionName="SOUTH")
    assert checker.needs_series(north) and not checker.needs_series(south)
    assert checker.keep(north, ["CT", "MR", "MR"]) and north.ModalitiesInStudy == ["CT", "MR"]
    assert not checker.keep(south)
    assert not checker.keep(answer(InstitutionName="NORTH"), ["US"])
    assert checker.keep(answer(InstitutionName="NORTH"))
    assert (check.answers, check.dropped, check.unverified, check.checked_by_series) == (4, 2, 1, 2)
    assert check.ignored == {"InstitutionName": 1, "ModalitiesInStudy": 1}
    assert check.unreturned == {"ModalitiesInStudy": 1}


def test_the_series_look_up_comes_after_the_answers_are_read():
    checker = AnswerChecker(Query.build("study", modality="MR"), AnswerCheck(level=Level.STUDY))
    read: list[str] = []

    def answers():
        for uid in ("1.1", "1.2"):
            read.append(uid)
            yield answer(StudyInstanceUID=uid)

    def series(study):
        assert read == ["1.1", "1.2"], "a look-up while the answers are still arriving"
        return ["MR"] if study.StudyInstanceUID == "1.1" else ["CT"]

    assert [a.StudyInstanceUID for a in checker.filter(answers(), series)] == ["1.1"]


def test_messages_say_what_happened_at_each_level():
    assert AnswerCheck(level=Level.STUDY, answers=3).messages() == []
    check = AnswerCheck(level=Level.SERIES, answers=1, unverified=1, unreturned={"Modality": 1},
                        above=AnswerCheck(level=Level.STUDY, answers=5, dropped=2,
                                          ignored={"ModalitiesInStudy": 2, "InstitutionName": 1}))
    assert check.messages() == [
        "2 of 5 study answers dropped: the PACS ignored InstitutionName and ModalitiesInStudy",
        "1 of 1 series answer kept unverified: the PACS returned no Modality to check it against",
    ]
