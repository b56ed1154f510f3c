"""The chunked run's contact reasons, early-warning list and win-back list: each chunk of
customers by the pipeline's own functions, then a global ranking in DuckDB.

Per chunk (the same ranges of customer ids as the scoring):

* **the contacts' reasons** (:func:`clvtools.pipeline.drivers.contact_reasons`) from the
  contacted customers' rows, their scoring rows as the Cox model scored them
  (:func:`~clvtools.pipeline.scoring.churn_inputs`), and two numbers over the whole base:
  the share of live customers whose value is at least theirs (a cumulative count over the
  live customers' values in DuckDB) and the average customer's log baseline (from the live
  customers' counts per recency band, :func:`.list_chunks.centre_of_bands`);
* **the early warning** (:func:`.list_chunks.early_warning_chunk`, as on Spark): the same
  Cox model scored on the scoring table one KPI period earlier, the structural term from the
  observation end's BG/NBD on each customer's history then, read off that table's own
  columns as the standard engine reads it (:func:`clvtools.pipeline.attention.score_at`);
* **the win-back list** (:func:`clvtools.targeting.win_back.win_back_list`) of the
  declared-churned customers.

Each chunk's entries go to a Parquet part file; the ranks are a window over all the parts
(largest rise, best net benefit first, ties by customer id: the standard engine's order of
its customers), kept as a DuckDB table sorted by rank.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..data.chunked_plan import parts
from ..data.chunked_tables import chunk_frame, chunk_where
from ..data.engine import quote_ident
from ..data.survival_tables import scoring_table
from ..errors import ClvInputError, ConvergenceError
from ..pipeline.drivers import contact_reasons
from ..pipeline.scoring import churn_inputs
from ..targeting.win_back import win_back_list
from .list_chunks import band_counts, centre_of_bands, early_warning_chunk

__all__ = ["ChunkedLists", "WIN_BACK_EXTRA", "attention_lists"]

#: The lifecycle columns the win-back list carries after its own (then the attributes).
WIN_BACK_EXTRA = ("declared_at", "purchases", "lifetime_spend")
_EARLY, _WIN_BACK, _AT_LEAST, _BEFORE = ("chunked_early_warning", "chunked_win_back",
                                         "chunked_value_at_least", "chunked_scoring_before")


@dataclass
class ChunkedLists:
    """What :func:`attention_lists` made.

    Attributes
    ----------
    reasons : str
        SQL of the contacts' reason columns (``customer_id`` and the reasons).
    early_warning, win_back : str or None
        The DuckDB tables of the ranked lists (None: no early-warning list).
    counts : dict
        plan_summary.csv's counts of the lists (as the standard engine names them).
    notes : list of str
    """

    reasons: str
    early_warning: str | None
    win_back: str
    counts: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def attention_lists(run, *, scoring: str, rfm: str, decided: str, attributes) -> ChunkedLists:
    """The reasons, the early warning and the win-back list of a chunked run.

    Parameters
    ----------
    run : ChunkedRun
        Its plan (group drawn) and lifecycle tables on ``run.log.con``; the parts go under
        ``run.work``.
    scoring, rfm : str
        The scoring table and the RFM table at the observation end (DuckDB tables, sorted by
        customer).
    decided : str
        SQL of the decided parts.
    attributes : CustomerAttributes or None
        For the scoring table one period earlier.
    """
    s, scorers, con, bounds = run.settings, run.scorers, run.log.con, run.bounds
    axis = quote_ident(s.value_axis)
    distinct = con.execute(f"SELECT time_since_last_purchase, count(*) AS n FROM {scoring} "
                           "GROUP BY ALL ORDER BY 1").df()
    centre = centre_of_bands(band_counts(distinct, scorers, distinct["n"]), scorers)
    live = con.execute(f"SELECT count(*) FROM {decided} "
                       "WHERE churn_probability IS NOT NULL").fetchone()[0]
    # customers with a value at least v, per value v of a live customer: the value share of
    # the reasons (the share of live customers whose value is at least the customer's)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_AT_LEAST} AS SELECT v, sum(count(*)) OVER "
                f"(ORDER BY v DESC) AS at_least FROM (SELECT {axis} AS v FROM {decided} "
                "WHERE churn_probability IS NOT NULL) GROUP BY v")
    before, note = _scoring_before(run, attributes)
    counts = {"live": 0, "scored_before": 0, "not_scored_before": 0, "listed": 0}
    left_off = 0
    folder = Path(run.work)
    value_share = (f", a_l.at_least::DOUBLE / {max(live, 1)} AS value_share",
                   f" LEFT JOIN {_AT_LEAST} AS a_l ON d.churn_probability IS NOT NULL "
                   f"AND d.{axis} = a_l.v")
    attributes_named = run.attribute_columns()
    # the scores' types (customer_id's above all) for every part, an empty chunk's included
    scored = pq.read_schema(next((folder / "decided").glob("*.parquet")))
    for k in range(len(bounds)):
        table = chunk_frame(con, scoring, bounds, k).reset_index()
        rows = None
        if scorers.churn is not None and len(table):
            rows = churn_inputs(table, chunk_frame(con, rfm, bounds, k), scorers
                                ).set_index("customer_id")
        where = run.chunk_condition(k)
        contacted = con.execute(run.customers_sql(
            ("customer_id", s.value_axis, "churn_probability", "lapsed_revenue",
             "last_purchase"), contacts=True, where=where, order="d.customer_id",
            with_attributes=False, more=value_share)).df().set_index("customer_id")
        contacted["value_share"] = contacted["value_share"].fillna(0.0)
        found = contact_reasons(contacted, scorers.churn, rows, horizon=s.horizon,
                                centre=centre, time_unit=s.time_unit, value_axis=s.value_axis)
        _write_part(found.reset_index(), folder / "reasons", k, scored)
        if before is not None:
            entries, chunk_counts = _early_warning(con, run, decided, before, rows, k, centre)
            counts = {key: counts[key] + chunk_counts[key] for key in counts}
            _write_part(entries, folder / "early_warning", k, scored)
        churned = con.sql(run.customers_sql(
            (*run.customer_columns(), *WIN_BACK_EXTRA),
            where=f"{where} AND d.churn_probability IS NULL")).to_arrow_table()
        listed, off = win_back_list(churned.to_pandas(),
                                    extra_columns=[*WIN_BACK_EXTRA, *attributes_named])
        left_off += off
        _write_part(listed.drop(columns="win_back_rank"), folder / "win_back", k, churned.schema)
    if before is not None:
        con.execute(f"DROP TABLE {_BEFORE}")
        _rank(con, _EARLY, folder / "early_warning", "early_warning_rank", "rise")
    _rank(con, _WIN_BACK, folder / "win_back", "win_back_rank", "net_benefit")
    n_win_back = con.execute(f"SELECT count(*) FROM {_WIN_BACK}").fetchone()[0]
    summary = {**({f"early_warning_{k}": v for k, v in counts.items()} if before is not None
                  else {}),
               "win_back_listed": int(n_win_back), "win_back_no_value": left_off}
    return ChunkedLists(parts(folder / "reasons"), _EARLY if before is not None else None,
                        _WIN_BACK, summary, [] if note is None else [note])


def _scoring_before(run, attributes) -> tuple[str | None, str | None]:
    """The scoring table one KPI period before the observation end as a DuckDB table (its
    name), or None and why there is no early-warning list."""
    s, previous = run.settings, run.timeline.previous_scoring
    if run.scorers.churn is None or previous is None:
        return None, ("No early-warning list: it needs the Cox churn model and a history of "
                      "one KPI period before the observation end.")
    try:
        scoring_table(run.log.until(previous), attributes=attributes, churn_after=s.churn_after,
                      time_unit=s.time_unit, into=_BEFORE)
    except (ClvInputError, ConvergenceError) as exc:
        return None, f"No early-warning list: {str(exc).splitlines()[0]}"
    return _BEFORE, None


def _early_warning(con, run, decided: str, before: str, now_rows, k: int, centre: float):
    """Chunk ``k``'s early-warning entries and counts."""
    s, scorers, bounds = run.settings, run.scorers, run.bounds
    now = con.execute(
        f"SELECT customer_id, churn_probability, {quote_ident(s.value_axis)} AS value_at_stake "
        f"FROM {decided} WHERE churn_probability IS NOT NULL AND {chunk_where(bounds, k)} "
        "ORDER BY customer_id").df().set_index("customer_id")
    table = chunk_frame(con, before, bounds, k).reset_index()
    table = table[table["customer_id"].isin(now.index)]
    before_rows = None
    if len(table):
        # the structural term from each customer's own history then, as the standard engine
        # reads it off the table (attention.score_at): occasions, tenure, time since the last
        tenure = table["tenure"].to_numpy(dtype=float)
        history = pd.DataFrame(
            {"frequency": table["frequency"].to_numpy(dtype=float),
             "recency": tenure - table["time_since_last_purchase"].to_numpy(float),
             "T": tenure}, index=table["customer_id"].astype(str).to_numpy())
        before_rows = churn_inputs(table, history, scorers).set_index("customer_id")
    return early_warning_chunk(now["churn_probability"], now["value_at_stake"], now_rows,
                               before_rows, scorers, centre=centre, time_unit=s.time_unit)


def _write_part(frame: pd.DataFrame, folder: Path, k: int, like: pa.Schema) -> None:
    """One chunk's entries as ``folder/part-<k>.parquet``: the columns of ``like`` with its
    types (a chunk whose text column is all empty keeps the column's type), other text
    columns as strings."""
    folder.mkdir(parents=True, exist_ok=True)
    fields = []
    for column in frame.columns:
        if column in like.names:
            fields.append(like.field(column))
        elif frame[column].dtype == object:
            fields.append(pa.field(column, pa.string()))
        else:
            fields.append(pa.Schema.from_pandas(frame[[column]], preserve_index=False)
                          .field(column))
    pq.write_table(pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False),
                   folder / f"part-{k:06d}.parquet")


def _rank(con, into: str, folder: Path, rank: str, by: str) -> None:
    """The parts of ``folder`` ranked over the whole base as the table ``into`` (``rank``
    after ``customer_id``; ``by`` largest first, ties by customer id), sorted by rank."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {into} AS
        SELECT customer_id, row_number() OVER (ORDER BY {quote_ident(by)} DESC, customer_id)
                   AS {rank}, * EXCLUDE (customer_id)
        FROM {parts(folder)} ORDER BY {rank}""")
