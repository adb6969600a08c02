"""The figures of funder reports: median and nearest-rank percentile."""

from hub.reports import median, percentile


def test_median_and_percentile() -> None:
    hours = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 6.0, 7.0, 8.0, 9.0]
    assert median(hours) == 5.5
    assert median([4.0, 1.0, 2.0]) == 2.0
    assert percentile(hours, 0.9) == 9.0
    assert percentile([7.5], 0.9) == 7.5
    assert median([]) is None and percentile([], 0.9) is None
