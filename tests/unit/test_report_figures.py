"""The figures of funder reports: median and nearest-rank percentile, and the small counts
withheld so that no participant can be singled out."""

from typing import Any

from hub.referrals.reports import (
    CSV_COLUMNS,
    median,
    percentile,
    report_rows,
    suppress_small_counts,
)


def test_median_and_percentile() -> None:
    hours = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 6.0, 7.0, 8.0, 9.0]
    assert median(hours) == 5.5
    assert median([4.0, 1.0, 2.0]) == 2.0
    assert percentile(hours, 0.9) == 9.0
    assert percentile([7.5], 0.9) == 7.5
    assert median([]) is None and percentile([], 0.9) is None


def raw_report(**changes: Any) -> dict[str, Any]:
    """A report as `funder_report` builds it before anything is withheld."""
    report: dict[str, Any] = {
        "organization_id": "3f2c", "period": {"start": "2026-01-01", "end": "2027-01-01"},
        "participants_counted": 40, "legs_left_out_without_consent": 2,
        "sent": {"total": 12, "by_pathway": {"employment": 12}},
        "received": {"total": 30, "by_pathway": {"employment": 20, "settlement": 7,
                                                 "training": 3}},
        "acknowledgement": {"acknowledged": 28, "median_hours": 5.5, "p90_hours": 30.0,
                            "due": 30, "answered_on_time": 26,
                            "share_answered_on_time": 0.8667},
        "outcomes": {"sent": {"employment": {"employed": 9, "no_show": 0}},
                     "received": {"employment": {"employed": 11, "in_training": 4},
                                  "entrepreneurship": {"business_started": 1}}},
    }
    report.update(changes)
    return report


def test_small_counts_are_withheld_and_named() -> None:
    report = suppress_small_counts(raw_report(), 5)
    assert report["received"] == {"total": 30, "by_pathway": {
        "employment": 20, "settlement": None, "training": None}}  # 7 goes with the 3
    assert report["sent"] == {"total": 12, "by_pathway": {"employment": 12}}
    assert report["outcomes"]["received"] == {"employment": {"employed": 11,
                                                             "in_training": None},
                                              "entrepreneurship": {"business_started": None}}
    assert report["outcomes"]["sent"] == {"employment": {"employed": 9, "no_show": 0}}
    assert report["acknowledgement"]["median_hours"] == 5.5
    assert report["participants_counted"] == 40
    assert report["legs_left_out_without_consent"] is None
    assert report["suppression"] == {"min_cell": 5, "suppressed": [
        "legs_left_out_without_consent",
        "received.by_pathway.training", "received.by_pathway.settlement",
        "outcomes.received.employment.in_training",
        "outcomes.received.entrepreneurship.business_started"]}


def test_statistics_of_few_legs_are_withheld() -> None:
    few = raw_report(participants_counted=3, acknowledgement={
        "acknowledged": 3, "median_hours": 2.0, "p90_hours": 9.5, "due": 4,
        "answered_on_time": 3, "share_answered_on_time": 0.75})
    report = suppress_small_counts(few, 5)
    assert report["participants_counted"] is None
    assert report["acknowledgement"] == dict.fromkeys(
        ("acknowledged", "median_hours", "p90_hours", "due", "answered_on_time",
         "share_answered_on_time"))
    # Enough legs due, but few on time: the share would give that count back.
    late = raw_report(acknowledgement={"acknowledged": 12, "median_hours": 70.0,
                                       "p90_hours": 99.0, "due": 12, "answered_on_time": 2,
                                       "share_answered_on_time": 0.1667})
    ack = suppress_small_counts(late, 5)["acknowledgement"]
    assert ack == {"acknowledged": 12, "median_hours": 70.0, "p90_hours": 99.0, "due": 12,
                   "answered_on_time": None, "share_answered_on_time": None}


def test_a_small_total_hides_its_cells_and_threshold_one_hides_nothing() -> None:
    small = raw_report(sent={"total": 4, "by_pathway": {"employment": 3, "training": 1}})
    assert suppress_small_counts(small, 5)["sent"] == {
        "total": None, "by_pathway": {"employment": None, "training": None}}
    assert suppress_small_counts(small, 1) == {**small, "suppression": {"min_cell": 1,
                                                                        "suppressed": []}}
    assert suppress_small_counts(small, 10)["received"]["by_pathway"]["settlement"] is None


def test_csv_rows_mark_what_was_withheld() -> None:
    rows = report_rows(suppress_small_counts(raw_report(), 5))
    assert {"section": "referrals", "direction": "received", "pathway": "training",
            "value": "<5", "suppressed": "yes"} in rows
    assert {"section": "referrals", "direction": "received", "pathway": "employment",
            "value": 20} in rows
    few = raw_report(acknowledgement={"acknowledged": 2, "median_hours": 2.0,
                                      "p90_hours": 3.0, "due": 9, "answered_on_time": 2,
                                      "share_answered_on_time": 0.2222})
    rows = report_rows(suppress_small_counts(few, 5))
    assert {"section": "acknowledgement_median_hours", "direction": "received", "value": "",
            "suppressed": "yes"} in rows
    assert {"section": "acknowledgement_due", "direction": "received", "value": 9} in rows
    assert all(set(row) <= set(CSV_COLUMNS) for row in rows)
