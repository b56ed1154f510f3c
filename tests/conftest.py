"""Shared fixtures: small transaction logs written as real CSV and Parquet files."""
from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from clvtools.data.transactions import TransactionLog

#: Valid but extreme generator parameters (Beta draws of exactly 0 or 1, near-zero rates and
#: spend scales, huge lifetimes), shared by the generator's tests.
EXTREME_PARAMETERS = [
    ("bgnbd", {"r": 0.02, "alpha": 0.05, "a": 0.02, "b": 0.02, "p": 0.05, "q": 1.01}),
    ("pnbd", {"r": 0.02, "alpha": 0.05, "s": 0.01, "beta": 1e-4, "gamma": 1e-3}),
    ("pnbd", {"r": 50.0, "alpha": 100.0, "s": 50.0, "beta": 1e4}),
]


def write_csv(tmp_path: Path, text: str, name: str = "tx.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def occasions_log(rows, observation_end: dt.date, *, con=None, name: str = "occ"
                  ) -> TransactionLog:
    """A TransactionLog over a table ``name`` of exactly these (customer_id, date, amount)
    occasions, built without read_transactions so that a test controls every row (and may
    break the log's promises, such as no occasion after the observation end)."""
    con = duckdb.connect() if con is None else con
    df = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    # Cast so that the table has the log's types whatever pandas inferred.
    con.register("_occ_df", df)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT customer_id::VARCHAR AS customer_id, "
                "date::DATE AS date, amount::DOUBLE AS amount FROM _occ_df")
    con.unregister("_occ_df")
    return TransactionLog(con, name, observation_end, has_amounts=bool(df["amount"].notna().any()))


@pytest.fixture
def cdnow_master() -> pd.DataFrame:
    """lifetimes' shipped CDNOW master log, ids as strings with their leading zeros."""
    spec = importlib.util.find_spec("lifetimes")
    path = Path(spec.origin).parent / "datasets" / "CDNOW_master.txt"
    return pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})


def assert_summaries_match(expected: pd.DataFrame, actual: pd.DataFrame) -> None:
    """An RFM summary equals lifetimes': counts and times exactly; monetary values (summed in
    another order by DuckDB and pandas) to 1e-12 relative."""
    expected = expected.sort_index()
    assert list(actual.columns) == list(expected.columns)
    assert actual.index.equals(expected.index)
    for column in expected:
        if column.startswith("monetary"):
            np.testing.assert_allclose(actual[column], expected[column], rtol=1e-12, atol=1e-9)
        else:
            np.testing.assert_array_equal(actual[column].to_numpy(), expected[column].to_numpy())


def assert_scores_match(got: pd.DataFrame, expected: pd.DataFrame, scores,
                        labels=("cell", "action")) -> None:
    """Another engine's per-customer figures equal the single machine's, rows in the same
    order: the ``scores`` to 1e-9 (relative and absolute, NaN where NaN), the ``labels``
    exactly."""
    for column in scores:
        np.testing.assert_allclose(got[column].to_numpy(float), expected[column].to_numpy(float),
                                   rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=column)
    for column in labels:
        assert (got[column].to_numpy() == expected[column].to_numpy()).all(), column


def assert_tables_match(got: pd.DataFrame, expected: pd.DataFrame, *, atol: float) -> None:
    """Another engine's table (e.g. forecast.csv) equals the single machine's: the same
    columns, the text exactly, the figures to 1e-9 relative or ``atol`` (one cent and a hair
    for money written to the cent), NaN where NaN."""
    assert list(got.columns) == list(expected.columns)
    numbers = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]
    for column in numbers:
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9, atol=atol,
                                   equal_nan=True, err_msg=column)
    text = [c for c in expected.columns if c not in numbers]
    pd.testing.assert_frame_equal(got[text], expected[text], check_dtype=False)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local Spark session (2 cores) for the Spark tests, stopped at the end.

    Its scratch files and warehouse go to a temporary folder, never the working directory;
    its log says warnings only. The tests that use it are marked ``spark`` and grouped on one
    xdist worker (``xdist_group``), so that a test session starts one JVM.
    """
    pyspark_sql = pytest.importorskip("pyspark.sql")
    import sys

    scratch = tmp_path_factory.mktemp("spark")
    session = (pyspark_sql.SparkSession.builder.master("local[2]").appName("clvtools-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.local.dir", str(scratch / "local"))
               .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               # small data, many short queries: compiling them costs more than running them
               # (a first query took 28 s with whole-stage code generation and the JVM's
               # optimising compiler on a loaded machine, 8 s without)
               .config("spark.sql.codegen.wholeStage", "false")
               .config("spark.sql.adaptive.enabled", "false")
               .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
               .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1")
               # the executors' Python is the tests' (with this clvtools on its path)
               .config("spark.pyspark.python", sys.executable)
               .config("spark.pyspark.driver.python", sys.executable)
               .getOrCreate())
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()
