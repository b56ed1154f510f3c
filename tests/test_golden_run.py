"""The outputs of a small fixed run do not drift: every CSV and JSON file is compared with a
stored reference (tests/data/golden/), text and counts exactly, numbers to a relative 1e-8.

The last digits of a fit may differ between BLAS kernels, hence the tolerance; the fields
that are meant to differ between runs (package versions, BLAS kernel) are not compared.
Variance matrices are compared on the correlation scale, to 1e-5 of sqrt(v_ii v_jj): they
are inverses of Hessians taken by finite differences, whose last bits the kernel moves and
whose condition number amplifies that (measured between OpenBLAS' SkylakeX and Haswell kernels:
3e-6 on that scale, while every estimate and every customer's figure agreed to 1e-13).
Refresh the reference only on purpose, after checking the difference:
``CLVTOOLS_REFRESH_GOLDEN=1 pytest -n 0 tests/test_golden_run.py`` (in one process: two
workers would rewrite the folder at once).
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvtools.api import analyze
from clvtools.config import Settings
from clvtools.datasets import generate_customer_base

GOLDEN = Path(__file__).parent / "data" / "golden"
RTOL, ATOL = 1e-8, 1e-12
VARIANCE_TOL, VARIANCE_KEYS = 1e-5, ("variance_matrix", "covariance")
#: JSON keys whose values describe the machine and versions, not the analysis.
VOLATILE = {"provenance", "run", "clvtools_version", "version"}


def _inputs():
    """2,000 generated customers with attributes, and contracts for every third of them."""
    base = generate_customer_base(2000, seed=21, start="2022-01-01", observation_end="2024-06-30")
    customers = base.customers.drop(columns="acquisition_date")
    rng = np.random.default_rng(21)
    first = base.transactions.groupby("customer_id")["date"].min().dt.normalize()
    ids = first.index[::3]
    start = first.loc[ids]
    end = start + pd.to_timedelta(rng.integers(30, 700, len(ids)), unit="D")
    end = end.where(end <= pd.Timestamp("2024-06-30"))
    reason = np.where(end.isna(), None, rng.choice(["voluntary", "non_payment"], len(ids)))
    contracts = pd.DataFrame({"customer_id": ids, "start": start.to_numpy(),
                              "end": end.to_numpy(), "end_reason": reason})
    return base.transactions, customers, contracts


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    transactions, customers, contracts = _inputs()
    results = analyze(transactions, customers=customers, contracts=contracts,
                      config=Settings(horizon=26, churn_after=20, seed=3))
    out = results.write(tmp_path_factory.mktemp("golden") / "out")
    if os.environ.get("CLVTOOLS_REFRESH_GOLDEN"):
        if os.environ.get("PYTEST_XDIST_WORKER"):
            pytest.fail("Refresh the reference in one process: add -n 0.")
        shutil.rmtree(GOLDEN, ignore_errors=True)
        # forecast.xlsx is binary: its bytes are compared between two runs in
        # test_report_outputs.py, its figures with forecast.csv's in test_report_workbook.py
        shutil.copytree(out, GOLDEN, ignore=shutil.ignore_patterns("survival_table.csv",
                                                                   "*.xlsx", "*.html"))
    return out


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.suffix in (".csv", ".json", ".toml"))


def test_the_same_files_are_written(written):
    assert GOLDEN.is_dir(), "no reference: run with CLVTOOLS_REFRESH_GOLDEN=1"
    assert set(_files(GOLDEN)) <= set(_files(written))
    # survival_table.csv is large and checked through the churn model's drivers instead
    assert set(_files(written)) - set(_files(GOLDEN)) == {"survival_table.csv"}


def _compare_frames(name: str, got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns), name
    assert len(got) == len(want), name
    for column in want.columns:
        g, w = got[column], want[column]
        if pd.api.types.is_numeric_dtype(w) and pd.api.types.is_numeric_dtype(g):
            np.testing.assert_allclose(g.to_numpy(float), w.to_numpy(float), rtol=RTOL,
                                       atol=ATOL, equal_nan=True, err_msg=f"{name}:{column}")
        else:
            assert g.fillna("").astype(str).tolist() == w.fillna("").astype(str).tolist(), \
                f"{name}:{column}"


def _compare_variance(path: str, got, want) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, path
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
    assert np.all(np.abs(got - want) <= VARIANCE_TOL * scale), path


def _compare_json(path: str, got, want) -> None:
    if path.rpartition(".")[2] in VARIANCE_KEYS:
        _compare_variance(path, got, want)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) - VOLATILE == set(want) - VOLATILE, path
        for key in set(want) - VOLATILE:
            _compare_json(f"{path}.{key}", got[key], want[key])
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare_json(f"{path}[{i}]", g, w)
    elif isinstance(want, float) and isinstance(got, (int, float)):
        assert got == pytest.approx(want, rel=RTOL, abs=ATOL), path
    else:
        assert got == want, path


@pytest.mark.parametrize("name", _files(GOLDEN) if GOLDEN.is_dir() else [])
def test_file_matches_the_reference(written, name):
    if name.endswith(".csv"):
        read = dict(dtype=str) if name.startswith("demo_input") else {}
        _compare_frames(name, pd.read_csv(written / name, **read),
                        pd.read_csv(GOLDEN / name, **read))
    elif name.endswith(".json"):
        _compare_json(name, json.loads((written / name).read_text()),
                      json.loads((GOLDEN / name).read_text()))
    else:
        assert (written / name).read_text() == (GOLDEN / name).read_text()


def test_plan_states_the_involuntary_share_of_the_contract_ends(written):
    # the golden inputs give every third customer a contract ending for a voluntary or a
    # non-payment reason: the plan says which share of the ends within the horizon (26
    # weeks) were involuntary, from the Aalen-Johansen incidence it wrote beside it
    summary = pd.read_csv(written / "plan_summary.csv").iloc[0]
    incidence = pd.read_csv(written / "contract_cumulative_incidence.csv")
    at = incidence[incidence["time"] <= 26].groupby("reason")["cumulative_incidence"].last()
    assert summary["involuntary_reasons"] == "non_payment"
    assert summary["involuntary_share"] == pytest.approx(at["non_payment"] / at["all"], rel=1e-9)
    assert 0.2 < summary["involuntary_share"] < 0.8      # reasons drawn half and half
