"""The numbers in the get and store summaries read as a person would write them."""

from __future__ import annotations

from pacskit.cli.common import counted, rates


def test_one_is_singular_and_the_rest_plural():
    assert [counted(n, "instance") for n in (0, 1, 2)] == ["0 instances", "1 instance", "2 instances"]


def test_a_slow_rate_keeps_a_decimal_and_megabytes_per_second_are_given():
    assert rates(1, 419_400_000, 3.9) == "0.3 inst/s, 107.5 MB/s"
    assert rates(2000, 18_800_000, 1.7) == "1176 inst/s, 11.1 MB/s"
    assert rates(5, 0, 0.0) == "—"
