"""The per-customer table handed out in chunks and as a DuckDB relation, and customers.csv
written chunk by chunk: the same bytes as the whole table written at once."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from clvtools import api
from clvtools.data.export import arrow_table, whole_day_columns, write_csv, write_csv_chunks
from clvtools.report import outputs
from clvtools.report.safe_text import neutralise_arrow


@pytest.fixture(scope="module")
def results():
    return api.demo(2000, seed=3)


def test_chunks_cover_the_table_in_order(results):
    analysis = results.analysis
    customers = analysis.targets.customers
    chunks = list(analysis.iter_customers(chunk_rows=300))
    assert [len(c) for c in chunks] == [300] * 6 + [200]
    pd.testing.assert_frame_equal(pd.concat(chunks), customers)
    with pytest.raises(ValueError, match="chunk_rows"):
        next(analysis.iter_customers(chunk_rows=0))


def test_the_relation_runs_sql_over_the_same_rows(results):
    analysis = results.analysis
    customers = analysis.targets.customers
    relation = analysis.customers_relation()
    assert relation.columns == list(customers.columns)
    by_cell = relation.aggregate("cell, count(*) AS n, sum(revenue_at_risk) AS risk", "cell").df()
    expected = customers.groupby("cell", dropna=False).agg(
        n=("cell", "size"), risk=("revenue_at_risk", "sum"))
    got = by_cell.set_index("cell").loc[expected.index]
    assert got["n"].tolist() == expected["n"].tolist()
    np.testing.assert_allclose(got["risk"], expected["risk"], rtol=1e-12)


def test_customers_csv_in_chunks_is_the_whole_tables_bytes(results, tmp_path, monkeypatch):
    customers = results.analysis.targets.customers
    whole = tmp_path / "whole.csv"
    table, _ = neutralise_arrow(arrow_table(outputs.to_cents(customers)))
    write_csv(table, whole)
    # 7 chunks of 300 (and a last of 200) through the run's own writer
    monkeypatch.setattr(outputs, "CUSTOMERS_CHUNK_ROWS", 300)
    results.write(tmp_path / "out")
    assert (tmp_path / "out" / "customers.csv").read_bytes() == whole.read_bytes()


def test_chunks_whose_types_differ_write_the_whole_tables_bytes(tmp_path):
    frame = pd.DataFrame({
        # whole days in the first chunk only: the whole table decides (timestamps)
        "seen": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03 10:30", None],
                               format="ISO8601"),
        "day": pd.to_datetime(["2024-01-01", None, "2024-02-01", "2024-03-01"]),
        # no text at all in the first chunk (arrow: null), text in the second
        "note": [None, None, "a, quoted", "b"],
        "value": [1.5, np.nan, 3.0, 4.25],
    })
    assert whole_day_columns(frame) == ["day"]
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    write_csv(frame, whole)
    days = whole_day_columns(frame)
    parts = [arrow_table(frame.iloc[i:i + 2], days) for i in (0, 2)]
    assert parts[0].schema.field("note").type == pa.null()
    write_csv_chunks(parts, chunked)
    assert chunked.read_bytes() == whole.read_bytes()
    assert b"2024-01-01 00:00:00" in whole.read_bytes()  # the first chunk alone: 2024-01-01
