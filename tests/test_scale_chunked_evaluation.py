"""The chunked run's targeting evaluation out of time: its targeting_evaluation.csv,
profit_curve.csv and survival curves by matrix cell equal the standard run's on the same demo
(text exactly, figures to 1e-9), without and with customer attributes, under a budget and
with a contactable column; the report shows the standard section's table; a run without the
evaluation says so. And the contactable column, honoured as on one machine (the same plan,
count, note and error)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvtools import api
from clvtools.data import engine
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError
from clvtools.pipeline import inputs as inputs_module
from clvtools.pipeline.evaluation import BY_CELL, NO_EVALUATION, survival_with_cells
from clvtools.report.outputs import OUTPUTS, write_folder
from clvtools.report.sections import targets
from clvtools.scale import chunked_evaluation as chunked_evaluation_module
from clvtools.scale.chunked_evaluation import chunked_evaluation
from clvtools.scale.chunked_report import NOT_COMPUTED, chunked_sections

SETTINGS = {"value_model": "bgnbd", "push_capacity": 25}
NAMES = ("targeting_evaluation.csv", "profit_curve.csv")
#: Customers a chunk: several chunks at the holdout start (about 1,100 customers there).
CHUNK_ROWS = 400


@pytest.fixture(scope="module")
def base():
    # three years: the history holds the validation's landmarks and the holdout
    return generate_customer_base(1500, seed=8, start="2022-01-01",
                                  observation_end="2024-12-31")


@pytest.fixture(scope="module", params=["without", "with"])
def runs(request, base):
    """The standard run and the chunked run, without and with the customer attributes."""
    attributes = base.customers if request.param == "with" else None
    return (api.analyze(base.transactions, customers=attributes, **SETTINGS),
            api.analyze_chunked(base.transactions, customers=attributes,
                                chunk_rows=CHUNK_ROWS, **SETTINGS))


def assert_files_equal(got: Path, expected: Path) -> None:
    """Text exactly, figures to 1e-9 (the cut-off lines are summed by group of tied scores
    in the chunked run, by customer in the standard one: about 1e-12 apart)."""
    for name in NAMES:
        a, b = (pd.read_csv(folder / name, keep_default_na=False, na_values=[""])
                for folder in (got, expected))
        # 4 rankings x 11 measures and the base's 7 figures; 4 rankings x 101 shares
        assert len(b) == {"targeting_evaluation.csv": 51, "profit_curve.csv": 404}[name]
        assert list(a.columns) == list(b.columns), name
        numbers = [c for c in b.columns if pd.api.types.is_float_dtype(b[c])]
        for column in numbers:
            np.testing.assert_allclose(a[column], b[column], rtol=1e-9, atol=1e-9,
                                       equal_nan=True, err_msg=f"{name}: {column}")
        text = [c for c in b.columns if c not in numbers]
        pd.testing.assert_frame_equal(a[text], b[text], check_dtype=False)


def _write_both(standard, chunked, root: Path) -> tuple[Path, Path]:
    chunked.write(root / "chunked")
    write_folder({o.name: (lambda o=o: o.content(standard.analysis, {})) for o in OUTPUTS
                  if o.name in (*NAMES, BACKTEST)}, root / "standard")
    return root / "chunked", root / "standard"


#: The backtest's first origin is the holdout start: the evaluation's refit serves both.
BACKTEST = "forecast_backtest.csv"


def assert_backtest_equal(got: Path, expected: Path) -> None:
    """forecast_backtest.csv, money to the cent (a figure 1e-9 away may round to the next)."""
    a, b = (pd.read_csv(folder / BACKTEST) for folder in (got, expected))
    assert len(b) >= 20 and list(a.columns) == list(b.columns)
    for column in b.columns:
        if pd.api.types.is_float_dtype(b[column]):
            np.testing.assert_allclose(a[column], b[column], rtol=1e-9, atol=0.0100001,
                                       err_msg=column)
        else:
            pd.testing.assert_series_equal(a[column], b[column], check_dtype=False)


def test_the_chunked_evaluation_files_equal_the_standard_files(runs, tmp_path):
    standard, chunked = runs
    folders = _write_both(standard, chunked, tmp_path)
    assert_files_equal(*folders)
    assert_backtest_equal(*folders)
    measures = chunked.evaluation.measures.set_index(["ranking", "measure"])["value"]
    # the plan at the holdout start pushes the capacity's 25, and some churned there
    assert measures[("model", "customers_pushed")] == 25
    assert measures[("all", "churners")] > 50
    # the standard note among the run's notes, its scratch tables and files gone
    assert standard.analysis.evaluation.notes[0] in chunked.notes
    tables = {r[0] for r in chunked.log.con.execute("SHOW TABLES").fetchall()}
    assert not any(t.startswith("chunked_eval") for t in tables)
    assert not list(Path(chunked.work).glob("eval_*"))


def test_the_evaluation_files_are_the_same_bit_for_bit_on_two_threads(base, tmp_path,
                                                                     monkeypatch):
    # DuckDB's two threads meet the rows of the part files in whatever order they run: sums
    # of doubles differed in their last digits from run to run; exact sums do not
    monkeypatch.setattr(inputs_module, "connect",
                        lambda **kwargs: engine.connect(threads=2, **kwargs))
    written = []
    for run in ("first", "second"):
        # small chunks: many part files for the threads to share
        chunked = api.analyze_chunked(base.transactions, chunk_rows=60, **SETTINGS)
        assert chunked.log.con.execute("SELECT current_setting('threads')").fetchone()[0] == 2
        figures = chunked.evaluation
        folder = write_folder({NAMES[0]: lambda e=figures: e.measures,
                               NAMES[1]: lambda e=figures: e.profit_curve}, tmp_path / run)
        written.append({name: (folder / name).read_bytes() for name in NAMES})
    assert written[0] == written[1]
    assert written[0][NAMES[0]].count(b"\n") == 52         # the header and 51 figures


#: The files the curves by matrix cell go into, stacked under the curves overall and by
#: attribute (``by`` says which).
SURVIVAL_FILES = ("survival_curves", "median_time_to_churn", "logrank_tests")


def test_the_survival_curves_by_cell_equal_the_standard_ones(runs, tmp_path):
    # the curves, medians and log-rank tests by matrix cell at the evaluation date: the
    # standard files' rows by "matrix cell", text exactly, figures to 1e-9
    standard, chunked = runs
    got = chunked.evaluation.survival_by_cell
    assert set(got) == set(SURVIVAL_FILES)
    write_folder({f"{n}.csv": (lambda o=o: o.content(standard.analysis, {})) for o in OUTPUTS
                  for n in SURVIVAL_FILES if o.name == f"{n}.csv"}, tmp_path / "standard")
    write_folder({f"{n}.csv": (lambda n=n: survival_with_cells({}, got).get(n))
                  for n in SURVIVAL_FILES}, tmp_path / "chunked")
    for name in SURVIVAL_FILES:
        a, b = (pd.read_csv(tmp_path / folder / f"{name}.csv", keep_default_na=False,
                            na_values=[""]) for folder in ("chunked", "standard"))
        b = b[b["by"] == BY_CELL].reset_index(drop=True)
        assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0, name
        numbers = [c for c in b.columns if pd.api.types.is_numeric_dtype(b[c])]
        for column in numbers:
            np.testing.assert_allclose(a[column], b[column], rtol=1e-9, atol=1e-9,
                                       err_msg=f"{name}: {column}")
        text = [c for c in b.columns if c not in numbers]
        pd.testing.assert_frame_equal(a[text], b[text], check_dtype=False, obj=name)
    # several cells, with churn in them: curves that could differ
    medians = got["median_time_to_churn"]
    assert medians["segment"].nunique() >= 3 and medians["events"].sum() > 50


def test_the_report_shows_the_standard_evaluation(runs):
    standard, chunked = runs
    assert "targets" not in NOT_COMPUTED

    def evaluation_blocks(section):
        return [b for b in section.blocks
                if getattr(b, "caption", "").startswith("Out of time, per ranking")
                or getattr(b, "title", "").startswith("Targeting evaluated out of time")]
    got = evaluation_blocks(next(s for s in chunked_sections(chunked) if s.id == "targets"))
    expected = evaluation_blocks(targets.section(standard.analysis))
    assert [b.kind for b in expected] == ["chart", "table"]
    assert [b.kind for b in got] == [b.kind for b in expected]
    assert (got[1].columns, got[1].rows) == (expected[1].columns, expected[1].rows)
    assert got[0].title == expected[0].title


def test_under_a_budget_the_evaluation_is_the_standard_knapsacks(base, tmp_path,
                                                                 monkeypatch):
    # the plan at the holdout start under a push budget: the standard knapsack there too
    settings = {"value_model": "bgnbd", "control_share": 0.0, "push_budget": 150.0}
    standard = api.analyze(base.transactions, **settings)

    def queried_again(*args, **kwargs):
        raise AssertionError("the landmark rows at the holdout start were queried again")
    # the main fit's rows at the holdout start (its first landmark) are the rows scored there
    monkeypatch.setattr(chunked_evaluation_module, "landmark_table", queried_again)
    chunked = api.analyze_chunked(base.transactions, chunk_rows=CHUNK_ROWS, **settings)
    assert standard.analysis.evaluation.measures is not None
    assert_files_equal(*_write_both(standard, chunked, tmp_path))
    # the scratch tables the evaluation and the backtest shared are dropped
    tables = {r[0] for r in chunked.log.con.execute("SHOW TABLES").fetchall()}
    assert not tables & {chunked_evaluation_module.EVALUATION_RFM,
                         chunked_evaluation_module.EVALUATION_LANDMARKS}


def test_without_the_validation_model_the_run_says_there_is_no_evaluation(tmp_path):
    # a history too short for the churn model's out-of-time validation: no model to score
    # the holdout start with; nothing is computed and the standard note says why
    got, fitted = chunked_evaluation(None, None, None, None, churn=None, value_model="bgnbd",
                                     covariates=None, attributes=None, push=None, pull=None,
                                     chunk_rows=10, work=tmp_path, store_plan=None)
    assert fitted is None and got.measures is None and got.profit_curve is None
    assert got.notes == [NO_EVALUATION]


def _with_contactable(customers: pd.DataFrame, values) -> pd.DataFrame:
    """The customers file with a contactable column drawn from ``values`` (seeded), its
    first 50 customers left out of the file (they may be contacted, as on one machine)."""
    out = customers.copy()
    out["contactable"] = np.random.default_rng(3).choice(values, len(out))
    return out.iloc[50:]


def test_a_contactable_column_is_honoured_as_the_standard_engine_does(base, tmp_path):
    # yes and no words with spaces and capitals, blanks (no), and customers absent (yes)
    customers = _with_contactable(base.customers, ["yes", "no", " Y ", "0", None])
    standard = api.analyze(base.transactions, customers=customers, **SETTINGS)
    chunked = api.analyze_chunked(base.transactions, customers=customers,
                                  chunk_rows=CHUNK_ROWS, **SETTINGS)
    expected = standard.analysis.targets.summary["not_contactable"]
    assert expected > 300 and chunked.summary["not_contactable"] == expected
    note = f"{expected:,} customers are marked not contactable and were left out of the plan."
    assert note in standard.analysis.targets.notes and note in chunked.notes
    # both actions closed where no: the same actions, groups and ranks as the standard plan
    got = chunked.customers_relation().df().set_index("customer_id")
    wanted = standard.customers.set_index("customer_id").loc[got.index]
    for column in ("action", "group", "priority_rank"):
        pd.testing.assert_series_equal(got[column], wanted[column], check_dtype=False)
    # the sensitivity's candidates and the evaluation's naive plans: the contactable only
    pd.testing.assert_frame_equal(chunked.sensitivity, standard.analysis.targets.sensitivity,
                                  rtol=1e-9, atol=1e-9)
    assert_files_equal(*_write_both(standard, chunked, tmp_path))
    # the flags are a DuckDB table of the run (read a chunk at a time), one per file row
    assert chunked.log.con.execute("SELECT count(*) FROM chunked_contactable").fetchone()[0] \
        == len(customers)


def test_a_contactable_value_neither_yes_nor_no_is_the_standard_error(base):
    customers = _with_contactable(base.customers, ["yes", "no", "maybe", "later"])
    with pytest.raises(ClvInputError) as standard:
        api.analyze(base.transactions, customers=customers, **SETTINGS)
    with pytest.raises(ClvInputError) as chunked:
        api.analyze_chunked(base.transactions, customers=customers, chunk_rows=CHUNK_ROWS,
                            **SETTINGS)
    assert str(chunked.value) == str(standard.value)
    assert "contactable" in str(chunked.value) and "['later', 'maybe']" in str(chunked.value)
