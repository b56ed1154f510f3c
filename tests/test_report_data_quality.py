"""The report's data-quality section (report/sections/data_quality.py)."""
from __future__ import annotations

from clvtools.config import Settings
from clvtools.report.sections import data_quality


def _quality(**extra) -> dict:
    return {"source": "tx.csv", "rows_read": 10, "rows_used": 9, "rows_excluded": 1,
            "excluded_by_reason": {"duplicate_rows": 1}, "customers": 3, **extra}


def test_duplicates_not_looked_for_are_not_reported_as_none_found():
    """A Spark run under duplicate_rows = "keep" does not look for duplicates: its quality
    dict has no count, and the page must say so rather than "0"."""
    assert data_quality._duplicates(_quality()).startswith("not looked for")
    assert (data_quality._duplicates(_quality(duplicate_rows_found=4,
                                              duplicate_rows_policy="drop"))
            == "4 (policy: drop)")
    # and the section's table is built from it either way
    for quality in (_quality(), _quality(duplicate_rows_found=0, duplicate_rows_policy="keep")):
        assert data_quality._transactions(quality, Settings()) is not None
