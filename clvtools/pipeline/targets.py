"""Step 5, the decisions: one row per customer with both axes side by side (value and revenue
at risk from the value model, churn probability from the churn model, lifecycle status), the
value-versus-risk matrix and the push/pull plan (clvtools.targeting), built from the settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import Settings, parse_cut
from ..errors import ClvInputError
from ..targeting.allocation import Action, allocate
from ..targeting.control import CONTROL, TREATMENT, hold_out_contacts
from ..targeting.matrix import CELLS, CHURNED, concentration, matrix_table, value_risk_matrix
from ..targeting.revenue_at_risk import involuntary_share
from ..targeting.sensitivity import plan_sensitivity
from ._threads import alongside_thread
from .attention import attention_lists, early_warning, lifecycle_columns, rows_for
from .drivers import baseline_centre, contact_reasons
from .inputs import CONTACTABLE, Inputs
from .risk import RiskResult
from .scoring import customer_scores
from .timeline import Timeline
from .value import ValueResult

__all__ = ["PLAN_COLUMNS", "TargetsResult", "targets_step", "not_contactable_note"]

#: Columns the decisions add to the customers table, in order (after ``lifecycle``).
PLAN_COLUMNS = ("cell", "action", "group", "priority_rank", "expected_net_benefit",
                "last_purchase", "net_benefit_push", "net_benefit_pull")
#: Text values of a ``contactable`` column read as yes / no (any other value is an error).
YES_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
NO_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})


@dataclass
class TargetsResult:
    """What the decisions step computed.

    Attributes
    ----------
    customers : pandas.DataFrame
        One row per customer (``customers.csv``): RFM, value, churn probability, revenue at
        risk (lapsed and preventable), lifecycle status, then :data:`PLAN_COLUMNS` and the
        customer's attributes when given. Full precision.
    targets : pandas.DataFrame
        The contact list (``targets.csv``): push then pull customers in priority order.
    matrix : pandas.DataFrame
        Per-cell totals (``matrix.csv``).
    concentration : pandas.DataFrame
        Shares of expected revenue held by the top customers and the Gini coefficient.
    sensitivity : pandas.DataFrame
        The plan under scaled uplifts and reactivation rates and a moved limit
        (``sensitivity.csv``; :func:`~clvtools.targeting.sensitivity.plan_sensitivity`).
    early_warning : pandas.DataFrame or None
        Live customers whose churn probability rose since the previous KPI period
        (``early_warning.csv``; :mod:`.attention`).
    win_back : pandas.DataFrame or None
        Customers already declared churned, by the net benefit of a reactivation offer
        (``win_back.csv``).
    control_power : pandas.DataFrame or None
        Per action and cell, the treated and control counts and the smallest uplift (or
        reactivation rate) the hold-out can detect (``control_power.csv``).
    plan_parts : pandas.DataFrame or None
        The plan's own columns that ``customers`` does not hold (:data:`PLAN_OWN_COLUMNS`),
        one row per customer in its order; :attr:`plan` adds the rest from ``customers``.
    summary : dict
        The plan in figures (``plan_summary.csv``): counts, cost, expected saved revenue,
        expected net benefit, return on spend, solver and gap, cut points.
    notes : list of str
        What a reader of the plan must know, for the console and data_quality.json.
    """

    customers: pd.DataFrame
    targets: pd.DataFrame | None = None
    matrix: pd.DataFrame | None = None
    concentration: pd.DataFrame | None = None
    sensitivity: pd.DataFrame | None = None
    early_warning: pd.DataFrame | None = None
    win_back: pd.DataFrame | None = None
    control_power: pd.DataFrame | None = None
    plan_parts: pd.DataFrame | None = None
    summary: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def plan(self) -> pd.DataFrame | None:
        """The plan as ``clvtools evaluate`` reads it later (``plan.parquet``): every
        customer's action, group, cell and the predictions and assumptions at the observation
        end (:data:`PLAN_TABLE_COLUMNS`).

        Built on each call from ``customers`` and ``plan_parts``: held whole beside
        ``customers``, its 14 copied columns cost about 0.1 GB at a million customers for as
        long as the run's results live.
        """
        return None if self.plan_parts is None else _plan_table(self.customers,
                                                                 self.plan_parts)


def targets_step(value: ValueResult, risk: RiskResult, inputs: Inputs | None = None,
                 settings: Settings | None = None,
                 timeline: Timeline | None = None) -> TargetsResult:
    """The per-customer table, the matrix, the push/pull plan and the lists that need attention
    (early warning needs ``inputs`` and ``timeline``)."""
    s = settings or Settings()
    # the average customer's log baseline, the reference of every driver (reasons and early
    # warning alike), over the live customers scored
    centre = (baseline_centre(risk.model, risk.scoring, s.horizon)
              if risk.model is not None and risk.scoring is not None else 0.0)
    warn = early_warning if inputs is not None and timeline is not None else None
    attributes = inputs.attributes if inputs is not None else None
    # the attributes' query before the early warning's thread takes the DuckDB connection:
    # a connection serves one thread at a time (it refuses a second caller), so this thread
    # runs no SQL inside the block below
    ids = value.rfm.index
    attribute_frame = attributes.frame(ids) if attributes is not None else None
    now, at_stake = (risk.scores["churn_probability"].reindex(ids),
                     value.scores[s.value_axis].reindex(ids))
    # the early warning (the churn model scored one KPI period back: SQL over the log, the
    # structural term, the drivers that moved) on the second core while the plan, its
    # sensitivity and the reasons are built here
    # each customer's row of the scoring table (-1: declared churned), found once for the
    # early warning and the reasons alike
    scoring_rows = (rows_for(ids, risk.scoring.index)
                    if risk.model is not None and risk.scoring is not None else None)
    with alongside_thread(warn, risk, inputs, timeline, s, now, at_stake, centre,
                          scoring_rows) as early:
        lifecycle = risk.lifecycle      # by its customer_id column (lifecycle_columns)
        # the per-customer scores as a Spark job computes them chunk by chunk (.scoring)
        customers = _with_ids(customer_scores(value.rfm, value.scores, risk.scores))
        customers["lifecycle"] = lifecycle_columns(customers, lifecycle,
                                                   ["lifecycle"])["lifecycle"]
        cells = value_risk_matrix(customers[s.value_axis], customers["churn_probability"],
                                  value_cut=parse_cut(s.value_cut), risk_cut=parse_cut(s.risk_cut))
        customers["cell"] = cells["cell"].to_numpy()
        aside = attributes.set_aside if attributes is not None else None
        push, pull = (_action(s, name, customers, aside) for name in ("push", "pull"))
        contactable = _contactable(customers, aside)
        terms = dict(margin=s.margin, offer=s.offer, capacity=s.push_capacity,
                     push_budget=s.push_budget, total_budget=s.total_budget,
                     contactable=contactable)
        plan = allocate(customers, push, pull, **terms)
        sensitivity = plan_sensitivity(customers, push, pull, plan, **terms)
        p, order, power = _hold_out(plan.plan, customers, s, push, pull)
        last_purchase = lifecycle_columns(customers, lifecycle,
                                          ["last_purchase"])["last_purchase"]
        # added in PLAN_COLUMNS' order after ``cell``, the table's last column so far: the
        # table is in its final order without a copy of every column
        for column in PLAN_COLUMNS[1:]:
            customers[column] = (last_purchase if column == "last_purchase"
                                 else p[column].to_numpy())
        plan_parts = _plan_parts(customers, p, push, pull)
        attribute_columns: list[str] = []
        if attribute_frame is not None:
            frame = attribute_frame
            # an attribute named like a column of ours keeps its name with a suffix (renamed
            # in place: the frame is this run's own, and rename would copy every column)
            frame.columns = [f"{c}_attribute" if c in customers.columns else c
                             for c in frame.columns]
            attribute_columns = list(frame.columns)
            customers = _join_attributes(customers, frame)
        targets = pd.DataFrame({
            "customer_id": customers["customer_id"].to_numpy()[order],
            "priority_rank": p["priority_rank"].to_numpy()[order],
            "action": p["action"].to_numpy()[order],
            "expected_net_benefit": p["expected_net_benefit"].to_numpy()[order],
            "saved_revenue": p["saved_revenue"].to_numpy()[order],
            "expected_cost": p["expected_cost"].to_numpy()[order],
            "cell": customers["cell"].to_numpy()[order],
        })
        targets["priority_rank"] = targets["priority_rank"].astype("Int64")
        # the columns the reasons read (contact_reasons), for the contacted rows only
        read = ["customer_id", s.value_axis, "churn_probability", "last_purchase",
                "lapsed_revenue"]
        reasons = _reasons(_rows(customers, read, order), customers, risk, s, centre,
                           None if scoring_rows is None else scoring_rows[order])
        for column in reasons.columns:
            targets[column] = reasons[column].to_numpy()
        for column in attribute_columns:
            targets[column] = customers[column].to_numpy()[order]
        cut_points = cells.attrs["cut_points"]
        summary = {**plan.summary, **_treated_part(p, s.control_share),
                   "offer": s.offer, "margin": s.margin, "value_axis": s.value_axis,
                   "value_cut_point": cut_points["value"], "risk_cut_point": cut_points["risk"],
                   "involuntary_share": None, "involuntary_reasons": None}
        summary.update(_involuntary(risk, customers, s))
    attention = attention_lists(customers, risk, early.result(), attribute_columns, lifecycle)
    summary.update(attention.counts)
    return TargetsResult(customers, targets, matrix_table(customers),
                         concentration(customers["expected_revenue"]), sensitivity,
                         attention.early_warning, attention.win_back, power, plan_parts,
                         summary, _notes(s, summary) + attention.notes)


def _with_ids(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` (indexed by id) with the id as its first column, ``customer_id``, and a
    range index: the columns are not copied (``reset_index`` would copy every one)."""
    columns = {"customer_id": scores.index.to_numpy(),
               **{c: scores[c].to_numpy() for c in scores.columns}}
    return pd.DataFrame(columns, copy=False)


#: Past this many columns, the attributes are joined (one copy of the table) rather than added
#: one by one: pandas warns of a fragmented table (PerformanceWarning) past 100 blocks.
_MOST_COLUMNS_ADDED = 90


def _join_attributes(customers: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``customers`` with the columns of ``frame`` (indexed by id) for its ids, as
    ``customers.join(frame, on="customer_id")`` gives them (missing where a customer has no
    row), added in place: a join would copy every column of the customers table too."""
    if not frame.index.is_unique or customers.shape[1] + frame.shape[1] > _MOST_COLUMNS_ADDED:
        return customers.join(frame, on="customer_id")
    ids = customers["customer_id"].to_numpy()
    # the rows of ``frame`` for each customer, looked up once for every column (a reindex
    # per column hashes a million text ids each time); None: the same ids in the same order
    rows = None if frame.index.equals(pd.Index(ids)) else frame.index.get_indexer(ids)
    for column in frame.columns:
        customers[column] = _taken(frame[column], rows)
    return customers


def _taken(column: pd.Series, rows: np.ndarray | None):
    """``column``'s values at the positions ``rows`` (-1: missing, filled as a reindex fills
    it: NaN with ints made floats, NaT, the extension type's NA), or as it is (None)."""
    if rows is None:
        return column.array
    if isinstance(column.dtype, np.dtype):
        return pd.api.extensions.take(column.to_numpy(), rows, allow_fill=True)
    return column.array.take(rows, allow_fill=True)


def _rows(table: pd.DataFrame, columns: list[str], rows: np.ndarray) -> pd.DataFrame:
    """The ``rows`` (positions) of ``columns``, column by column: selecting a list of
    columns first would consolidate the whole table (a copy of every column) on the way."""
    return pd.DataFrame({c: table[c].array[rows] for c in columns})


def _hold_out(plan: pd.DataFrame, customers: pd.DataFrame, s: Settings, push: Action,
              pull: Action) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """The plan with each customer's ``group`` (the control group drawn over the chosen
    customers, as the chunked and Spark runs draw it) and the priority ranks renumbered over
    the treatment, the contact list; the treatment's positions in priority order; and the
    power table (control_power.csv). ``plan`` (the allocation's own table) gets the two
    columns in place, not in a copy of its columns."""
    action = plan["action"].to_numpy(dtype=object)
    chosen = np.flatnonzero(action != "none")
    held = hold_out_contacts(
        action[chosen], customers["cell"].to_numpy(dtype=object)[chosen],
        customers["churn_probability"].to_numpy(dtype=float)[chosen],
        plan["priority_rank"].to_numpy(dtype=float, na_value=np.inf)[chosen],
        share=s.control_share, seed=s.seed, push=push, pull=pull)
    # one str object per label, shared by the rows
    group = np.empty(len(plan), dtype=object)
    group.fill("")
    group[chosen] = np.array([TREATMENT, CONTROL], dtype=object)[held.control.astype(np.intp)]
    rank = np.zeros(len(plan), dtype=np.int64)
    rank[chosen] = held.rank
    plan["group"] = group
    plan["priority_rank"] = pd.arrays.IntegerArray(rank, mask=rank == 0)
    treated = chosen[~held.control]
    return plan, treated[np.argsort(held.rank[~held.control], kind="stable")], held.power


def _involuntary(risk: RiskResult, customers: pd.DataFrame, s: Settings) -> dict:
    """With contracts, the share of ends within the horizon that are involuntary and the
    preventable revenue at that share (empty without)."""
    incidence = risk.tables.get("contract_cumulative_incidence")
    found = (involuntary_share(incidence, s.horizon, s.involuntary_reasons)
             if incidence is not None else None)
    if found is None:
        return {}
    return {"involuntary_share": found["involuntary_share"],
            "involuntary_reasons": found["involuntary_reasons"],
            "involuntary_preventable_revenue":
                found["involuntary_share"] * customers["preventable_revenue"].sum()}


#: The predictions a saved plan keeps per customer, beside its decisions.
PLAN_PREDICTIONS = ("churn_probability", "churn_model", "p_alive", "expected_purchases",
                    "revenue_if_retained", "expected_revenue", "preventable_revenue",
                    "lapsed_revenue", "last_purchase")


#: The saved plan's columns, in order (``plan.parquet``).
PLAN_TABLE_COLUMNS = ("customer_id", "action", "group", "cell", "priority_rank",
                      "expected_net_benefit", "saved_revenue", "expected_cost",
                      "assumed_uplift", "assumed_reactivation", *PLAN_PREDICTIONS)
#: Those that the customers table does not hold (its priority rank is a float, the plan's an
#: integer with gaps).
PLAN_OWN_COLUMNS = ("priority_rank", "saved_revenue", "expected_cost", "assumed_uplift",
                    "assumed_reactivation")


def _plan_parts(customers: pd.DataFrame, plan: pd.DataFrame, push: Action,
                pull: Action) -> pd.DataFrame:
    """The saved plan's own columns (:data:`PLAN_OWN_COLUMNS`): the priority rank and the
    economics behind each decision."""
    action = plan["action"].to_numpy()
    uplift = np.select([action == "push", action == "pull"],
                       [push.uplift_of(customers), pull.uplift_of(customers)], np.nan)
    reactivation = np.select([action == "push", action == "pull"],
                             [push.reactivation, pull.reactivation], np.nan)
    return pd.DataFrame({
        **{c: plan[c].array for c in ("priority_rank", "saved_revenue", "expected_cost")},
        "assumed_uplift": uplift, "assumed_reactivation": reactivation,
    })


def _plan_table(customers: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
    """The saved plan (:data:`PLAN_TABLE_COLUMNS`): decisions, the economics behind them and
    the predictions, from the customers table and the plan's own columns."""
    # the columns as they are (copy=False): a consolidated copy of a million rows would cost
    # seconds for a table only written to Parquet, column by column
    return pd.DataFrame({c: parts[c].array if c in parts else customers[c].to_numpy()
                         for c in PLAN_TABLE_COLUMNS}, copy=False)


def _treated_part(plan: pd.DataFrame, share: float) -> dict:
    """The plan's figures for the customers contacted (the treatment), and what holding out
    the control group costs in expected net benefit."""
    # numpy's comparison of the object arrays: a third of pandas' (its checks and a Series
    # per comparison) at a million customers
    group, action = plan["group"].to_numpy(), plan["action"].to_numpy()
    treated, control = group == TREATMENT, group == CONTROL
    push, pull = action == "push", action == "pull"
    cost = plan["expected_cost"].to_numpy()
    net = plan["expected_net_benefit"].to_numpy()
    spent = float(cost[treated].sum())
    return {
        "push": int((push & treated).sum()), "pull": int((pull & treated).sum()),
        "push_cost": float(cost[push & treated].sum()),
        "pull_cost": float(cost[pull & treated].sum()), "cost": spent,
        "expected_saved_revenue": float(plan["saved_revenue"].to_numpy()[treated].sum()),
        "expected_net_benefit": float(net[treated].sum()),
        "return_on_spend": float(net[treated].sum()) / spent if spent > 0 else float("nan"),
        "control_share": share, "push_control": int((push & control).sum()),
        "pull_control": int((pull & control).sum()),
        "control_forgone_net_benefit": float(net[control].sum()),
    }


def _reasons(contacted: pd.DataFrame, customers: pd.DataFrame, risk: RiskResult,
             s: Settings, centre: float, scoring_rows: np.ndarray | None = None
             ) -> pd.DataFrame:
    """The reason codes of the contact list: value at stake and risk, then the two churn
    drivers that raise the customer's risk most (live customers scored by the Cox model).
    ``scoring_rows``: each contacted customer's row of ``risk.scoring`` (-1: none), when
    known."""
    # by arrays: a filtered Series would take a million text ids of its index too
    live = (customers[s.value_axis].to_numpy(dtype=float)
            [~np.isnan(customers["churn_probability"].to_numpy(dtype=float))])
    ranked = np.sort(live)
    value = contacted[s.value_axis].to_numpy(dtype=float)
    share = (len(ranked) - np.searchsorted(ranked, value, side="left")) / max(len(ranked), 1)
    # indexed by id, the columns as they are (assign and set_index would copy them twice)
    frame = pd.DataFrame({**{c: contacted[c].array for c in contacted.columns
                             if c != "customer_id"}, "value_share": share},
                         index=pd.Index(contacted["customer_id"].to_numpy(), name="customer_id"))
    scoring = risk.scoring
    if scoring is not None and scoring_rows is not None:
        # only the contacted customers' rows: the reasons' look-up by id then hashes these,
        # not the whole scoring table (a third of a million ids at a million customers)
        scoring = scoring.take(scoring_rows[scoring_rows >= 0])
    return contact_reasons(frame, risk.model, scoring, horizon=s.horizon, centre=centre,
                           time_unit=s.time_unit, value_axis=s.value_axis)


def _action(s: Settings, name: str, customers: pd.DataFrame,
            aside: pd.DataFrame | None) -> Action:
    """The push or pull Action of the settings; an uplift column, where given, overrides the
    uplift setting for the customers it has a value for."""
    uplift = getattr(s, f"{name}_uplift")
    if isinstance(uplift, dict):
        unknown = sorted(set(uplift) - set(CELLS.values()) - {CHURNED})
        missing = sorted(set(CELLS.values()) - set(uplift))
        if unknown or missing:
            raise ClvInputError(
                f"The {name}_uplift table must give a number for each cell: "
                f"{', '.join(CELLS.values())}.", source="settings",
                advice=f"Unknown cells: {unknown or 'none'}; missing cells: {missing or 'none'}.")
    column = getattr(s, f"{name}_uplift_column")
    if column is not None:
        if aside is None or column not in aside:
            raise ClvInputError(f"The uplift column {column!r} ({name}_uplift_column) is not "
                                "in the customers file.", source="settings", column=column,
                                advice="Give --customers with that column, or leave the "
                                f"setting {name}_uplift_column out.")
        given = pd.to_numeric(aside[column], errors="coerce")
        base = Action(name, 0.0, 0.0, uplift, 0.0).uplift_of(customers)
        per_customer = customers["customer_id"].map(given).to_numpy(dtype=float)
        bad = (per_customer < 0) | (per_customer > 1)
        if bad.any():
            raise ClvInputError(f"{int(bad.sum())} values of the uplift column {column!r} are "
                                "outside [0, 1].", source="customers", column=column,
                                advice="Give the uplift as a fraction of would-be churners "
                                "kept (0.2 for 20 %).")
        # customers without a value keep the uplift setting
        uplift = pd.Series(np.where(np.isnan(per_customer), base, per_customer),
                           index=customers.index)
    return Action(name, getattr(s, f"{name}_cost"), getattr(s, f"{name}_incentive"), uplift,
                  getattr(s, f"{name}_reactivation"))


def _contactable(customers: pd.DataFrame, aside: pd.DataFrame | None) -> np.ndarray:
    """Who may be contacted: the ``contactable`` column where given (a blank is no), everyone
    else (also customers absent from the customers file)."""
    if aside is None or CONTACTABLE not in aside:
        return np.ones(len(customers), dtype=bool)
    text = aside[CONTACTABLE].astype("string").str.strip().str.lower()
    unknown = sorted(set(text.dropna()) - YES_WORDS - NO_WORDS)
    if unknown:
        raise ClvInputError(f"The contactable column holds values that are not yes or no: "
                            f"{unknown[:5]}.", source="customers", column=CONTACTABLE,
                            advice="Use true/false, yes/no or 1/0.")
    flag = text.isin(list(YES_WORDS)).astype(bool)      # blank: no recorded consent, not contacted
    # nullable: a customer absent from the file maps to NA (an object column's fillna
    # would downcast, which pandas deprecates)
    return (customers["customer_id"].map(flag).astype("boolean").fillna(True)
            .to_numpy(dtype=bool))


def not_contactable_note(count: int) -> str:
    """The run's note on the customers the contactable column leaves out of the plan."""
    return f"{count:,} customers are marked not contactable and were left out of the plan."


def _notes(s: Settings, summary: dict) -> list[str]:
    """The plan's caveats, said plainly."""
    notes = []
    constant = (not isinstance(s.push_uplift, dict) and not isinstance(s.pull_uplift, dict)
                and s.push_uplift_column is None and s.pull_uplift_column is None)
    if constant:
        notes.append("The uplifts are constants: the plan targets by value at stake "
                     "(preventable and lapsed revenue). Uplift measured in an experiment "
                     "(push_uplift_column, or `clvtools evaluate`) is what makes the push "
                     "list causal.")
    if summary["not_contactable"]:
        notes.append(not_contactable_note(summary["not_contactable"]))
    if summary["involuntary_share"] is not None:
        notes.append(f"{summary['involuntary_share']:.0%} of the contract ends within the horizon "
                     f"are involuntary ({summary['involuntary_reasons']}): a retention offer does "
                     "not address them. At that share, about "
                     f"{summary['involuntary_preventable_revenue']:,.0f} of the preventable "
                     "revenue is at involuntary risk (payment reminders, not offers).")
    if summary["solver"] == "greedy_lp":
        notes.append(f"The budget was allocated by the greedy LP relaxation; the plan is within "
                     f"{summary['gap']:,.2f} of the best possible expected net benefit.")
    return notes
