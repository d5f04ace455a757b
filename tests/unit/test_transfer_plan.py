"""The plan of a copy (pure): a query's matches expanded into instances, the same for any
source; a match the destination holds nothing of kept whole when the source can fetch it so."""

from __future__ import annotations

from pydicom import Dataset

from pacskit.query import Level, Query
from pacskit.transfer import by_series, plan

INSTANCES = [("1.1", "1.1.1", "1.1.1.1"), ("1.1", "1.1.1", "1.1.1.2"), ("1.1", "1.1.2", "1.1.2.1"),
             ("1.2", "1.2.1", "1.2.1.1")]


class FakeSource:
    """A source answering from :data:`INSTANCES` as a PACS would, and recording each search."""

    label = "fake"
    skipped = 0
    whole_levels = frozenset({Level.STUDY, Level.SERIES})

    def __init__(self) -> None:
        self.searches: list[Query] = []

    def search(self, query: Query):
        self.searches.append(query)
        for study, series, sop in INSTANCES:
            values = {"StudyInstanceUID": study, "SeriesInstanceUID": series, "SOPInstanceUID": sop}
            if all(values.get(k) == v for k, v in query.match.items() if k in values):
                ds = Dataset()
                for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")[
                        : {Level.STUDY: 1, Level.SERIES: 2, Level.IMAGE: 3}[query.level]]:
                    setattr(ds, keyword, values[keyword])
                ds.NumberOfStudyRelatedInstances = sum(1 for i in INSTANCES if i[0] == study)
                yield ds


def test_a_study_query_is_expanded_into_its_instances_once_each():
    source = FakeSource()
    found = plan(source, Query.build(Level.STUDY))
    assert found.instances == INSTANCES and found.wholes == []
    assert [q.level for q in source.searches] == [Level.STUDY, Level.IMAGE, Level.IMAGE]
    assert source.searches[1].match == {"StudyInstanceUID": "1.1"}


def test_a_study_the_destination_holds_nothing_of_is_kept_whole():
    source = FakeSource()
    found = plan(source, Query.build(Level.STUDY), holds_any=lambda match: match["StudyInstanceUID"] == "1.2")
    assert [(w.values, w.count) for w in found.wholes] == [({"StudyInstanceUID": "1.1"}, 3)]
    assert found.instances == [INSTANCES[3]]
    assert found.count == 4


def test_an_image_query_is_its_own_plan():
    source = FakeSource()
    found = plan(source, Query.build(Level.IMAGE, study_uid="1.1", series_uid="1.1.1"), holds_any=lambda m: False)
    assert found.instances == INSTANCES[:2] and found.wholes == []
    assert len(source.searches) == 1


def test_instances_are_grouped_by_series():
    assert by_series(INSTANCES) == {("1.1", "1.1.1"): ["1.1.1.1", "1.1.1.2"], ("1.1", "1.1.2"): ["1.1.2.1"],
                                    ("1.2", "1.2.1"): ["1.2.1.1"]}
