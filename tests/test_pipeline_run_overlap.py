"""The main job's run-level overlap (pipeline/run.py): the KPIs on their own cursor of the run's
database beside the decisions give the results of the steps run in turn."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvtools.config import Settings
from clvtools.data.engine import connect, cursor
from clvtools.datasets import generate_customer_base
from clvtools.pipeline import _threads
from clvtools.pipeline.run import run_analysis


@pytest.fixture(scope="module")
def inputs():
    """600 generated customers with attributes, and contracts for every fourth of them."""
    base = generate_customer_base(600, seed=8, start="2022-01-01", observation_end="2024-06-30")
    first = base.transactions.groupby("customer_id")["date"].min().dt.normalize()
    ids = first.index[::4]
    end = first.loc[ids] + pd.to_timedelta(np.arange(len(ids)) % 500 + 30, unit="D")
    end = end.where(end <= pd.Timestamp("2024-06-30"))
    contracts = pd.DataFrame({"customer_id": ids, "start": first.loc[ids].to_numpy(),
                              "end": end.to_numpy(),
                              "end_reason": np.where(end.isna(), None, "voluntary")})
    return base.transactions, base.customers.drop(columns="acquisition_date"), contracts


@pytest.fixture(scope="module")
def runs(inputs):
    """The run with the overlap on, then off: each result and its progress messages."""
    transactions, customers, contracts = inputs
    out = []
    for overlap in (True, False):
        steps: list[str] = []
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_threads, "OVERLAP", overlap)
            out += [run_analysis(transactions, customers=customers, contracts=contracts,
                                 settings=Settings(horizon=26, churn_after=20, seed=3),
                                 on_step=steps.append), steps]
    return out


def test_overlap_on_and_off_give_the_same_results_and_steps(runs):
    on, steps_on, off, steps_off = runs
    assert steps_on == steps_off
    # the backtest right after the value step (before the risk step's tables are held),
    # what is left of the KPIs last
    assert steps_on[-1] == "Computing KPIs and cohorts"
    backtest = steps_on.index("Backtesting the forecast at earlier origins")
    assert steps_on[backtest - 1] == "Checking the value model's assumptions and fit"
    assert steps_on[backtest + 1] == "Building the landmark survival table"
    # the second thread's step, bit for bit (contracts: the end reasons' churn by segment)
    for name in ("kpis", "cohorts", "churn_by_segment"):
        pd.testing.assert_frame_equal(getattr(on.kpi, name), getattr(off.kpi, name),
                                      check_exact=True)
    assert on.kpi.churn_by_segment.isin(["voluntary"]).any().any()
    assert on.backtest.table is not None
    pd.testing.assert_frame_equal(on.backtest.table, off.backtest.table, check_exact=True)
    assert on.backtest.notes == off.backtest.notes
    # and those of the decisions' thread, run beside them
    pd.testing.assert_frame_equal(on.targets.customers, off.targets.customers,
                                  check_exact=True)
    pd.testing.assert_frame_equal(on.forecast.table, off.forecast.table, check_exact=True)
    # and the Cox fit and its validation, which the KPIs now run beside
    pd.testing.assert_frame_equal(on.risk.scores, off.risk.scores, check_exact=True)
    pd.testing.assert_frame_equal(on.risk.tables["churn_validation"],
                                  off.risk.tables["churn_validation"], check_exact=True)


def test_a_cursor_sees_the_runs_tables_with_the_runs_session_settings():
    con = connect()
    con.execute("CREATE TABLE shared AS SELECT 1 AS x")
    con.execute("CREATE TEMP TABLE own AS SELECT 2 AS x")
    second = cursor(con)
    assert second.execute("SELECT x FROM shared").fetchall() == [(1,)]
    # a TEMP table is its connection's alone: the run's tables must not be TEMP ones
    with pytest.raises(Exception, match="own"):
        second.execute("SELECT x FROM own")
    # DuckDB keeps the time zone per connection: dates of instants would shift otherwise
    assert second.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"
    assert (second.execute("SELECT current_setting('temp_directory')").fetchone()
            == con.execute("SELECT current_setting('temp_directory')").fetchone())
    second.close()
    assert con.execute("SELECT x FROM own").fetchall() == [(2,)]


def test_the_tables_the_second_thread_reads_are_visible_to_a_cursor(runs):
    result = runs[0]
    log = result.inputs.log
    second = cursor(log.con)
    for table in (log.occasions, result.inputs.attributes.table,
                  result.inputs.contracts.table, *[name for key, name in log.derived.items()
                                                   if key[0] == "spell_bounds"]):
        assert second.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
    second.close()


def test_the_kpis_query_through_a_connection_other_than_the_runs(inputs, monkeypatch):
    """The KPI step beside the decisions never uses the run's own connection (which the
    decisions' thread queries meanwhile): checked on the connection it is handed."""
    from clvtools.pipeline import run as run_module

    seen = []
    real = run_module.kpi_step

    def recording(step_inputs, settings):
        seen.append(step_inputs.log.con)
        return real(step_inputs, settings)

    made = []
    real_read = run_module.read_inputs

    def reading(*args, **kwargs):
        made.append(real_read(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(run_module, "kpi_step", recording)
    monkeypatch.setattr(run_module, "read_inputs", reading)
    transactions, _, _ = inputs
    run_analysis(transactions, settings=Settings(horizon=26, churn_after=20, seed=3))
    assert len(seen) == 1 and seen[0] is not made[0].log.con


def test_a_callers_own_database_keeps_its_tables(tmp_path):
    """On a connection the caller passes in, the run's tables stay TEMP: a table of the
    caller's of the same name is neither replaced nor joined by clvtools' tables in its file
    (a review found both when the tables became ordinary ones)."""
    import duckdb

    from clvtools.data.transactions import read_transactions

    path = str(tmp_path / "mine.duckdb")
    con = duckdb.connect(path)
    con.execute("CREATE TABLE occasions AS SELECT 'my data' AS note")
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"],
                       "date": pd.to_datetime(["2024-01-02", "2024-02-03", "2024-01-05"]),
                       "amount": [10.0, 20.0, 5.0]})
    log = read_transactions(tx, observation_end="2024-03-31", con=con)
    assert con.execute(f"SELECT count(*) FROM {log.occasions}").fetchone()[0] == 3
    con.close()
    again = duckdb.connect(path)
    assert again.execute("SELECT * FROM occasions").fetchall() == [("my data",)]
    assert [r[0] for r in again.execute("SHOW TABLES").fetchall()] == ["occasions"]
    again.close()


def test_the_kpis_start_before_the_churn_model_is_fitted(inputs, monkeypatch):
    """They run beside the Cox fit and its validation (about one busy core), not only
    beside the decisions: started as soon as the risk step has built their tables."""
    from clvtools.pipeline import run as run_module
    transactions, customers, _ = inputs
    events: list[str] = []
    started = run_module.alongside_thread

    def recording(work, *args):
        events.append(f"second thread: {getattr(work, '__name__', work)}")
        return started(work, *args)

    monkeypatch.setattr(run_module, "alongside_thread", recording)
    result = run_analysis(transactions, customers=customers,
                          settings=Settings(horizon=26, churn_after=20, seed=3),
                          on_step=events.append)
    kpis = events.index("second thread: _kpis_on_own_cursor")
    assert events.count("second thread: _kpis_on_own_cursor") == 1
    assert events.index("Building the landmark survival table") < kpis
    assert kpis < events.index("Fitting the churn model (Cox)")
    assert result.risk.model is not None and len(result.kpi.kpis)


def test_the_structural_terms_query_on_a_cursor_of_their_own(inputs, monkeypatch):
    """The structural terms' RFM query runs in their second thread, on a cursor of the run's
    database (beside the landmark step's own queries on the run's connection); on a caller's
    own connection (the run's tables TEMP, which a cursor cannot see) it runs at once on the
    caller's connection. Either way the cache holds the same terms."""
    import duckdb

    from clvtools.data.transactions import read_transactions
    from clvtools.pipeline import structural

    transactions, _, _ = inputs
    queried: list = []
    real = structural.rfm_counts_at

    def recording(log, ends, **kwargs):
        queried.append(log.con)
        return real(log, ends, **kwargs)

    monkeypatch.setattr(structural, "rfm_counts_at", recording)
    terms = []
    for con, ours in ((connect(), True), (duckdb.connect(), False)):
        assert structural.run_scope(con) == ("" if ours else "TEMP ")
        log = read_transactions(transactions, observation_end="2024-06-30", con=con)
        dates = [pd.Timestamp("2023-06-30").date(), log.observation_end]
        cache: dict = {}
        queried.clear()
        work = structural.structural_work(log, dates, horizon=26, churn_after=20,
                                          time_unit="week", cache=cache)
        at_once = list(queried)
        with _threads.alongside_thread(work) as done:
            pass
        done.result()
        if ours:
            assert at_once == [] and len(queried) == 1 and queried[0] is not con
        else:
            assert at_once == [con] and queried == [con]
        terms.append(cache)
        con.close()
    # each date's BG/NBD fit and its term (the live customers' keys, their probabilities)
    assert terms[0].keys() == terms[1].keys() and len(terms[0]) == 4
    for key in terms[0]:
        if key[0] == "fit":
            pd.testing.assert_series_equal(terms[0][key][1].params_, terms[1][key][1].params_)
        else:
            for mine, theirs in zip(terms[0][key], terms[1][key], strict=True):
                np.testing.assert_array_equal(mine, theirs)
