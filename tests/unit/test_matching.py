import pytest
from matching_cases import MATCHING_CASES
from pydicom import Dataset

from pacskit.query import Level, Query


def dataset_of(attributes: dict) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        if value is not None:
            setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize(("match", "attributes", "expected"),
                         [c[1:] for c in MATCHING_CASES], ids=[c[0] for c in MATCHING_CASES])
def test_query_matches_follows_ps3_4_c2_2_2(match, attributes, expected):
    query = Query(level=Level.IMAGE, match=match)
    assert query.matches(dataset_of(attributes)) is expected
