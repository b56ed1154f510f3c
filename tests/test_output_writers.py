"""The writers behind the output files, tuned for speed at a million customers: the same
content as the plain library calls they replace (CSV bytes, Parquet frames, the P(alive)
map's sums); and the garbage collector kept off the run's objects while they are written."""
import gc

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from clvtools.data.export import CSV_BATCH_ROWS, arrow_table, write_csv, write_parquet
from clvtools.report.output_folder import write_folder
from clvtools.report.sections.matrix import alive_grid


def _customers(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    value = np.round(rng.lognormal(3, 2, rows) * rng.choice([-1, 1], rows), 2)
    value[::11] = np.nan
    return pd.DataFrame({
        "customer_id": [f"c{i}" if i % 97 else f'"q", {i}' for i in range(rows)],
        "p_alive": rng.uniform(0, 1, rows) ** 8,   # tiny values: long decimals
        "value": value,
        "rank": pd.array([i if i % 5 else None for i in range(rows)], dtype="Int64"),
        "action": rng.choice(["push", "pull", "none"], rows).astype(object),
        "last_purchase": pd.Timestamp("2024-01-01") + pd.to_timedelta(
            rng.integers(0, 700, rows), unit="D"),
    })


def test_csv_batches_write_the_bytes_of_pyarrows_default(tmp_path):
    frame = _customers(3 * CSV_BATCH_ROWS + 17)
    table = arrow_table(frame)
    expected = pa.BufferOutputStream()
    pacsv.write_csv(table, expected, write_options=pacsv.WriteOptions(quoting_style="needed"))
    write_csv(table, tmp_path / "customers.csv")
    assert (tmp_path / "customers.csv").read_bytes() == expected.getvalue().to_pybytes()
    assert b'"""q"", 97"' in expected.getvalue().to_pybytes()   # quoting was exercised


def test_parquet_reads_back_the_frame_with_dictionaries_for_text_and_dates_only(tmp_path):
    frame = _customers(5000, seed=1)
    frame.attrs = {"made_by": "test"}
    path = tmp_path / "plan.parquet"
    write_parquet(frame, path)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, frame)   # dtypes too: Int64 with gaps, datetime
    assert back.attrs == frame.attrs
    chunks = pq.ParquetFile(path).metadata.row_group(0)
    dictionary = {chunks.column(i).path_in_schema: chunks.column(i).has_dictionary_page
                  for i in range(chunks.num_columns)}
    assert dictionary == {"customer_id": True, "p_alive": False, "value": False,
                          "rank": False, "action": True, "last_purchase": True}


def test_the_p_alive_map_sums_as_histogram2d_does():
    rng = np.random.default_rng(2)
    rows = 20_000
    customers = pd.DataFrame({
        # whole purchases, some far above the 99th percentile (clipped into the last column)
        "frequency": np.where(rng.uniform(size=rows) < 0.02, 500.0, rng.poisson(3, rows)),
        # on the edges too: 0 and the largest recency
        "recency": np.round(rng.uniform(0, 50, rows), 0),
        "p_alive": rng.uniform(0, 1, rows),
    })
    customers.loc[::37, "p_alive"] = np.nan
    grid = alive_grid(customers)
    kept = customers.dropna()
    clipped = np.minimum(kept["frequency"].to_numpy(), grid.top)
    counts, _, _ = np.histogram2d(clipped, kept["recency"], [grid.x_edges, grid.y_edges])
    sums, _, _ = np.histogram2d(clipped, kept["recency"], [grid.x_edges, grid.y_edges],
                                weights=kept["p_alive"])
    assert counts.sum() == len(kept)
    np.testing.assert_array_equal(grid.customers, counts)
    np.testing.assert_array_equal(grid.alive_sum, sums)   # bit for bit


def _frozen_while_writing(tmp_path, name: str) -> list[int]:
    seen = []

    def content():
        seen.append(gc.get_freeze_count())
        return "x"

    def write(_name, text, path):
        path.write_text(text)
    write_folder({"a.txt": content, "data_quality.json": lambda: "{}"}, tmp_path / name,
                 write=write)
    return seen


def test_the_objects_of_the_run_are_left_out_of_collections_while_writing(tmp_path):
    assert gc.get_freeze_count() == 0
    assert _frozen_while_writing(tmp_path, "out")[0] > 0
    assert gc.get_freeze_count() == 0   # unfrozen after


def test_a_freeze_made_by_someone_else_is_left_as_it_is(tmp_path, monkeypatch):
    # the writer neither freezes again nor unfreezes (the frozen count itself is no witness:
    # a frozen object freed meanwhile lowers it)
    unfreeze, calls = gc.unfreeze, []
    gc.freeze()
    try:
        monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
        monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
        assert _frozen_while_writing(tmp_path, "out")[0] > 0
        assert calls == []
        assert gc.get_freeze_count() > 0
    finally:
        monkeypatch.undo()
        unfreeze()
