"""The decisions step in the main job: settings reach the plan (capacity, budgets, uplift
tables and columns, value axis), the contactable column is honoured, the contact list is in
priority order, and money is rounded to the cent in the CSV files only."""
import numpy as np
import pandas as pd
import pytest

from clvtools.api import analyze
from clvtools.config import Settings, load_settings
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError
from clvtools.pipeline.targets import PLAN_COLUMNS, _join_attributes

CELL_UPLIFT = {"protect": 0.4, "maintain": 0.1, "retain_cheaply": 0.2, "monitor": 0.0}


@pytest.fixture(scope="module")
def base():
    return generate_customer_base(1500, seed=4)


def _run(base, customers=None, **settings):
    attrs = base.customers.drop(columns="acquisition_date") if customers is None else customers
    # the plan, not the value model's choice, is under test: BG/NBD as set keeps these runs
    # fast (on this small BG/NBD base the automatic choice's Pareto/NBD candidate with
    # covariates takes ~50 s to fail to converge); test_pipeline_value_choice covers "auto"
    settings = {"value_model": "bgnbd", **settings}
    return analyze(base.transactions, customers=attrs, config=Settings(horizon=26, **settings))


@pytest.fixture(scope="module")
def capped(base):
    return _run(base, push_capacity=25)


def test_customers_have_the_plan_columns_in_order(capped):
    c = capped.customers
    cols = list(c.columns)
    start = cols.index("lifecycle") + 1
    assert tuple(cols[start:start + len(PLAN_COLUMNS)]) == PLAN_COLUMNS
    assert cols[start + len(PLAN_COLUMNS):] == ["channel", "region", "plan"]
    assert (c["action"] == "push").sum() <= 25
    assert set(c["action"]) <= {"push", "pull", "none"}
    assert (c.loc[c["churn_probability"].isna(), "cell"] == "churned").all()
    assert (c.loc[c["action"] != "none", "expected_net_benefit"] > 0).all()


def test_targets_csv_in_priority_order_and_money_to_the_cent(capped, tmp_path):
    out = capped.write(tmp_path / "out")
    targets = pd.read_csv(out / "targets.csv")
    assert list(targets.columns[:7]) == ["customer_id", "priority_rank", "action",
                                         "expected_net_benefit", "saved_revenue",
                                         "expected_cost", "cell"]
    assert targets["priority_rank"].tolist() == list(range(1, len(targets) + 1))
    assert set(targets["action"]) <= {"push", "pull"}
    customers = pd.read_csv(out / "customers.csv")
    for column in ("revenue_if_retained", "expected_net_benefit", "net_benefit_push"):
        cents = customers[column] * 100
        np.testing.assert_allclose(cents, cents.round(), atol=1e-6)
    # the API keeps full precision
    api = capped.customers["revenue_if_retained"]
    assert not np.allclose(api * 100, (api * 100).round())
    summary = pd.read_csv(out / "plan_summary.csv")
    treated = customers["group"] == "treatment"
    assert summary.loc[0, "push"] == ((customers["action"] == "push") & treated).sum()
    assert len(targets) == treated.sum()
    assert summary.loc[0, "solver"] == "sort"
    matrix = pd.read_csv(out / "matrix.csv").set_index("cell")
    assert matrix.loc["total", "customers"] == len(customers)
    # reason codes, then the attributes: every contact has a first reason, and the live ones
    # scored by the Cox model name their strongest driver
    assert list(targets.columns[7:]) == ["reason_1", "reason_2", "reason_3", "channel",
                                         "region", "plan"]
    assert targets["reason_1"].notna().all()
    live = targets["cell"] != "churned"
    assert targets.loc[live, "reason_1"].str.startswith("value at stake").all()
    assert targets.loc[~live, "reason_1"].str.startswith("declared churned").all()
    assert targets.loc[live, "reason_2"].str.contains("risk ×").mean() > 0.5


def test_budgets_are_respected(base):
    for limit in ("push_budget", "total_budget"):
        result = _run(base, **{limit: 300.0})
        s = result.analysis.targets.summary
        spent = s["push_cost"] if limit == "push_budget" else s["cost"]
        assert spent <= 300.0 * (1 + 1e-12)
        assert s["constraint"] == limit and s["gap"] >= 0


def test_contactable_column_and_uplift_column(base):
    customers = base.customers.drop(columns="acquisition_date").copy()
    rng = np.random.default_rng(0)
    customers["contactable"] = np.where(rng.uniform(size=len(customers)) < 0.3, "no", "yes")
    customers["push_lift"] = rng.uniform(0.0, 0.5, len(customers))
    result = _run(base, customers=customers, push_uplift_column="push_lift")
    c = result.customers.merge(customers[["customer_id", "contactable"]], on="customer_id")
    assert (c.loc[c["contactable"] == "no", "action"] == "none").all()
    assert result.analysis.targets.summary["not_contactable"] == (c["contactable"] == "no").sum()
    # neither column enters the models or the attributes
    assert "push_lift" not in result.customers and "contactable" not in result.customers
    assert "push_lift" not in result.analysis.inputs.attributes.kinds
    with pytest.raises(ClvInputError, match="uplift column"):
        _run(base, pull_uplift_column="absent")


def test_uplift_by_cell_and_value_axis(base):
    result = _run(base, push_uplift=CELL_UPLIFT, value_axis="expected_revenue")
    assert result.analysis.targets.summary["value_axis"] == "expected_revenue"
    with pytest.raises(ClvInputError, match="each cell"):
        _run(base, push_uplift={"protect": 0.3})


def test_limits_are_mutually_exclusive_and_uplift_tables_load(tmp_path):
    with pytest.raises(ClvInputError, match="not push_capacity and total_budget"):
        load_settings(None, push_capacity=10, total_budget=100.0)
    path = tmp_path / "c.toml"
    path.write_text("push_uplift = { protect = 0.3, maintain = 0.1, retain_cheaply = 0.05, "
                    "monitor = 0.0 }\nmargin = 0.4\n")
    s = load_settings(path)
    assert s.push_uplift["protect"] == 0.3 and s.margin == 0.4
    with pytest.raises(ClvInputError, match="fraction"):
        load_settings(None, push_uplift=1.5)


class _Guarded:
    """A DuckDB connection that refuses calls while ``busy["thread"]`` is set: what DuckDB
    itself does (ResourceInUseException) when a second thread calls a busy connection,
    made certain instead of a matter of timing."""

    def __init__(self, con, busy):
        self._con, self._busy = con, busy

    def __getattr__(self, name):
        if self._busy["thread"]:
            raise AssertionError(f"con.{name} called while the early warning's thread "
                                 "holds the connection")
        return getattr(self._con, name)


def test_the_targets_step_runs_no_sql_beside_the_early_warning_thread(capped, monkeypatch):
    """The early warning queries the log in a second thread while the targets step builds the
    plan: one DuckDB connection serves one thread at a time, so the step itself must run no
    SQL inside that block (the attributes' query once raced it: 'connection is busy')."""
    import contextlib
    import dataclasses
    from concurrent.futures import Future

    from clvtools.pipeline import targets

    busy = {"thread": False}

    @contextlib.contextmanager
    def held(work, *args):   # the thread holds the connection for the whole block
        busy["thread"] = True
        done = Future()
        try:
            yield done
        finally:
            busy["thread"] = False
        done.set_result(None if work is None else work(*args))

    monkeypatch.setattr(targets, "alongside_thread", held)
    run = capped.analysis
    con = _Guarded(run.inputs.log.con, busy)
    inputs = dataclasses.replace(
        run.inputs, log=dataclasses.replace(run.inputs.log, con=con),
        attributes=dataclasses.replace(run.inputs.attributes, con=con))
    again = targets.targets_step(run.value, run.risk, inputs, run.settings, run.timeline)
    pd.testing.assert_frame_equal(again.targets, run.targets.targets)
    assert again.early_warning is not None
    pd.testing.assert_frame_equal(again.early_warning, run.targets.early_warning)


def test_the_early_warning_reads_the_risk_steps_earlier_scoring_table(capped):
    """The risk step builds the scoring table one KPI period back from its sorted occasions
    (no second fetch of the log): the early warning takes it from there, once, and it equals
    the table built from the cut log."""
    from clvtools.data.landmark_arrays import sorted_occasions
    from clvtools.data.lifecycle import churn_days
    from clvtools.pipeline import attention, risk

    run = capped.analysis
    assert run.risk.earlier_scoring == {}        # taken by the run's early warning
    # the KPIs' spell bounds came from the same sorted occasions (with the year of spend)
    cd = churn_days(run.settings.churn_after, run.settings.time_unit)
    assert run.inputs.log.derived[("spell_bounds_year_micro", cd)] is True
    previous = run.timeline.previous_scoring
    rebuilt = attention.score_at(run.risk, run.inputs, previous, run.settings)
    s, log = run.settings, run.inputs.log
    rule = dict(churn_after=s.churn_after, time_unit=s.time_unit)
    run.risk.earlier_scoring.update(risk._earlier_scoring(
        log, previous, run.inputs.attributes, sorted_occasions(log, churn_days(**rule)), rule))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(attention, "scoring_table",
                      lambda *a, **k: (_ for _ in ()).throw(AssertionError("built again")))
        taken = attention.score_at(run.risk, run.inputs, previous, run.settings)
    assert run.risk.earlier_scoring == {}
    pd.testing.assert_frame_equal(taken, rebuilt, check_exact=True)


def test_a_run_builds_the_earlier_scoring_table_once(base, monkeypatch):
    """The run's early warning builds no scoring table of its own (the risk step made it)."""
    from clvtools.pipeline import attention

    def refuse(*args, **kwargs):
        raise AssertionError("the early warning built its scoring table again")

    monkeypatch.setattr(attention, "scoring_table", refuse)
    run = _run(base, push_capacity=25)
    assert run.early_warning is not None and len(run.early_warning)
    assert "No early-warning list" not in " ".join(run.analysis.targets.notes)


def test_attributes_join_the_customers_as_a_join_would():
    """The attributes are added column by column (no copy of the customers table): the same
    values and dtypes as ``join(on="customer_id")``, customers without a row included (ints
    become floats, booleans objects), and a join where ids repeat."""
    customers = pd.DataFrame({"customer_id": ["c3", "c1", "c2", "c9"], "x": [1.0, 2, 3, 4]})
    frame = pd.DataFrame({"n": [1, 2, 3], "b": [True, False, True], "s": ["a", None, "c"],
                          "cat": pd.Categorical(["u", "v", "u"]), "f": [0.5, 1.5, np.nan]},
                         index=pd.Index(["c1", "c2", "c3"], name="customer_id"))
    for rows in (customers, customers.iloc[:3]):
        expected = rows.join(frame, on="customer_id")
        pd.testing.assert_frame_equal(_join_attributes(rows.copy(), frame), expected)
    twice = pd.concat([frame, frame.iloc[:1]])
    pd.testing.assert_frame_equal(_join_attributes(customers.copy(), twice),
                                  customers.join(twice, on="customer_id"))


def test_many_attributes_join_without_a_fragmentation_warning():
    """120 attribute columns beside a table of one block per column (as the targets step
    builds it): a join, not 120 inserts, so pandas' PerformanceWarning (an error under this
    suite's filterwarnings) is not raised; the same table as join gives."""
    ids = [f"c{i}" for i in range(50)]
    customers = pd.DataFrame({"customer_id": ids,
                              **{f"x{k}": np.arange(50.0) + k for k in range(25)}}, copy=False)
    frame = pd.DataFrame({f"a{k}": np.arange(50) * k for k in range(120)},
                         index=pd.Index(ids[::-1], name="customer_id"))
    pd.testing.assert_frame_equal(_join_attributes(customers.copy(), frame),
                                  customers.join(frame, on="customer_id"))
