"""The distinct rows of the RFM summary with their counts: the summary itself, grouped; and
the structural BG/NBD fitted on them is the fit on the customers."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvtools.data.rfm import rfm_summary
from clvtools.data.rfm_counts import rfm_counts, rfm_counts_at
from clvtools.data.transactions import read_transactions
from clvtools.datasets import generate_customer_base
from clvtools.pipeline.structural import fit_structural_model


@pytest.fixture(scope="module")
def log():
    base = generate_customer_base(1500, seed=4, start="2022-01-01", observation_end="2024-06-30")
    return read_transactions(base.transactions)


@pytest.mark.parametrize("time_unit", ["day", "week", "month"])
def test_counts_are_the_summary_grouped(log, time_unit):
    at = log.until(dt.date(2023, 9, 14))
    summary = rfm_summary(at, time_unit=time_unit)
    counts = rfm_counts(at, time_unit=time_unit)
    grouped = (summary.groupby(["frequency", "recency", "T"]).size()
               .rename("customers").reset_index())
    # some rows stand for several customers: the grouping bites
    assert len(counts) < len(summary) and counts["customers"].sum() == len(summary)
    for column in ("frequency", "recency", "T", "customers"):
        # the same doubles: one division of the same whole days
        np.testing.assert_array_equal(counts[column].to_numpy(), grouped[column].to_numpy(),
                                      err_msg=column)


def test_fit_on_the_counts_is_the_fit_on_the_customers(log):
    summary = rfm_summary(log, time_unit="week")
    counts = rfm_counts(log, time_unit="week")
    on_customers = fit_structural_model(summary)
    on_counts = fit_structural_model(counts, weights=counts["customers"].to_numpy(dtype=float))
    pd.testing.assert_series_equal(on_counts.params_, on_customers.params_, rtol=0, atol=0)


def test_counts_of_a_log_of_raw_rows_count_each_day_once():
    base = generate_customer_base(300, seed=5, start="2023-01-01", observation_end="2024-06-30")
    # a second purchase on the same day for a hundred rows (another amount: no duplicate row)
    again = base.transactions.head(100).assign(amount=lambda t: t["amount"] + 1.0)
    rows = pd.concat([base.transactions, again], ignore_index=True)
    raw = read_transactions(rows, summarise=False)
    assert not raw.one_row_per_day
    summarised = read_transactions(rows)
    pd.testing.assert_frame_equal(rfm_counts(raw), rfm_counts(summarised))


def test_counts_at_several_ends_from_one_query_are_each_end_summary_grouped(log):
    # one aggregation for every end: each end's rows are those of the summary of the log cut
    # there (customers acquired later left out), the same doubles
    ends = [dt.date(2022, 2, 1), dt.date(2022, 5, 1), log.observation_end]
    at_ends = rfm_counts_at(log, ends + [ends[1]], time_unit="week")
    assert list(at_ends) == ends
    sizes = []
    for end in ends:
        summary = rfm_summary(log.until(end), time_unit="week")
        grouped = (summary.groupby(["frequency", "recency", "T"]).size()
                   .rename("customers").reset_index())
        sizes.append(at_ends[end]["customers"].sum())
        for column in ("frequency", "recency", "T", "customers"):
            np.testing.assert_array_equal(at_ends[end][column].to_numpy(),
                                          grouped[column].to_numpy(), err_msg=f"{end} {column}")
    assert sizes[0] < sizes[1] < sizes[2]      # the early end sees fewer customers
