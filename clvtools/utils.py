"""lifetimes-compatible utilities: same names, arguments and defaults as ``lifetimes.utils``.

A lifetimes user switches by changing ``from lifetimes.utils import ...`` to
``from clvtools.utils import ...``. The summaries run in DuckDB (see :mod:`clvtools.data.rfm`).

Differences from lifetimes 0.11.3, all deliberate:

- Timestamps are compared at day resolution for ``freq`` 'D', 'W' and 'M': a calibration or
  observation end is a day, and every transaction on that day belongs to it. Finer periods
  (``freq="h"``, ``"m"``, ``"s"``, ... and multiples such as ``"5D"``, every ``freq`` that
  lifetimes accepts) use the timestamps, as lifetimes does (:mod:`clvtools.data.rfm_periods`;
  ``"H"`` is read as hours and ``"m"`` as minutes, where lifetimes raises or counts months).
- Customer ids keep the input's dtype (strings keep their leading zeros).
- Bad input (a missing column, an unparsable date or amount, a missing id) raises
  :class:`clvtools.errors.ClvInputError` naming the rows, instead of a pandas error.
"""
from __future__ import annotations

import pandas as pd

from .btyd.utils import (
    _customer_lifetime_value,
    calculate_alive_path,
    expected_cumulative_transactions,
)
from .data.engine import fetch_frame
from .data.rfm import calibration_and_holdout
from .data.rfm_periods import calibration_and_holdout_at_freq, parse_freq, summary_at_freq
from .data.rfm_rows import rfm_rows_query
from .data.transactions import DataPolicies, parse_date, read_transactions
from .errors import ConvergenceError
from .units import UNIT_DAYS

__all__ = [
    "ConvergenceError",
    "summary_data_from_transaction_data",
    "calibration_and_holdout_data",
    "calculate_alive_path",
    "expected_cumulative_transactions",
    "_customer_lifetime_value",
]

#: lifetimes' ``freq`` codes -> period grain of the summary SQL.
_FREQ_GRAIN = {"D": "day", "W": "week", "M": "month"}

#: lifetimes keeps every row it can parse; the summary itself applies the observation end.
_LIFETIMES_POLICIES = DataPolicies(
    negative_amounts="keep", zero_amounts="keep", duplicate_rows="keep", same_day="combine",
    after_observation_end="drop",
)


def _read(transactions, customer_id_col, datetime_col, monetary_value_col, datetime_format):
    return read_transactions(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        datetime_format=datetime_format,
        policies=_LIFETIMES_POLICIES,
        summarise=False,  # the summary SQL merges each period's purchases itself
    )


def _restore_index(result: pd.DataFrame, transactions, customer_id_col: str) -> pd.DataFrame:
    result.index.name = customer_id_col
    if isinstance(transactions, pd.DataFrame):
        dtype = transactions[customer_id_col].dtype
        if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
            result.index = result.index.astype(dtype)
    return result


def summary_data_from_transaction_data(
    transactions,
    customer_id_col,
    datetime_col,
    monetary_value_col=None,
    datetime_format=None,
    observation_period_end=None,
    freq="D",
    freq_multiplier=1,
    include_first_transaction=False,
):
    """RFM summary of a transaction log (``lifetimes.utils`` name and arguments).

    Parameters
    ----------
    transactions : pandas.DataFrame, or a CSV/Parquet path or glob
    customer_id_col, datetime_col : str
    monetary_value_col : str, optional
    datetime_format : str, optional
    observation_period_end : date-like, optional
        Default: the last date in the data.
    freq : str
        Period of a purchase and unit of the result: ``"D"``, ``"W"``, ``"M"``, or any
        ``freq`` lifetimes accepts (``"h"`` or ``"H"``, ``"m"``, ``"s"``, ``"ms"``, ``"us"``,
        ``"ns"``, multiples such as ``"5D"``), counted on the timestamps.
    freq_multiplier : float
        Divides the times (``freq="D", freq_multiplier=7`` gives weeks counted in days).
    include_first_transaction : bool

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id: ``frequency``, ``recency``, ``T`` and, with a monetary
        column, ``monetary_value`` (mean of the repeat purchases, 0 without repeats).
    """
    if freq not in _FREQ_GRAIN:
        parse_freq(freq)  # a bad freq is refused before the file is read
        log = _read(transactions, customer_id_col, datetime_col, monetary_value_col,
                    datetime_format)
        result = summary_at_freq(
            log, freq=freq, observation_end=observation_period_end,
            datetime_format=datetime_format, multiplier=freq_multiplier,
            include_first_transaction=include_first_transaction,
            with_monetary=monetary_value_col is not None)
        return _restore_index(result, transactions, customer_id_col)
    grain = _FREQ_GRAIN[freq]
    log = _read(transactions, customer_id_col, datetime_col, monetary_value_col, datetime_format)
    end = (
        log.observation_end
        if observation_period_end is None
        else parse_date(observation_period_end, "observation_period_end", datetime_format)
    )
    sql = rfm_rows_query(
        log.occasions,
        observation_end=end,
        grain=grain,
        days_per_unit=UNIT_DAYS[grain],
        multiplier=freq_multiplier,
        include_first_transaction=include_first_transaction,
        with_monetary=monetary_value_col is not None,
    )
    result = fetch_frame(log.con, sql)
    return _restore_index(result, transactions, customer_id_col)


def calibration_and_holdout_data(
    transactions,
    customer_id_col,
    datetime_col,
    calibration_period_end,
    observation_period_end=None,
    freq="D",
    freq_multiplier=1,
    datetime_format=None,
    monetary_value_col=None,
    include_first_transaction=False,
):
    """Calibration RFM and holdout purchases (``lifetimes.utils`` name and arguments).

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id: ``frequency_cal``, ``recency_cal``, ``T_cal``,
        (``monetary_value_cal``), ``frequency_holdout``, (``monetary_value_holdout``: the
        mean of the holdout transactions, as in lifetimes), ``duration_holdout``.
    """
    if freq not in _FREQ_GRAIN:  # periods finer than a day, or multiples: on the timestamps
        parse_freq(freq)
        log = _read(transactions, customer_id_col, datetime_col, monetary_value_col,
                    datetime_format)
        result = calibration_and_holdout_at_freq(
            log, freq=freq, calibration_end=calibration_period_end,
            observation_end=observation_period_end, datetime_format=datetime_format,
            multiplier=freq_multiplier, include_first_transaction=include_first_transaction,
            with_monetary=monetary_value_col is not None)
        return _restore_index(result, transactions, customer_id_col)
    grain = _FREQ_GRAIN[freq]
    log = _read(transactions, customer_id_col, datetime_col, monetary_value_col, datetime_format)
    result = calibration_and_holdout(
        log,
        parse_date(calibration_period_end, "calibration_period_end", datetime_format),
        observation_end=(
            None
            if observation_period_end is None
            else parse_date(observation_period_end, "observation_period_end", datetime_format)
        ),
        grain=grain,
        days_per_unit=UNIT_DAYS[grain],
        multiplier=freq_multiplier,
        include_first_transaction=include_first_transaction,
    )
    return _restore_index(result, transactions, customer_id_col)
