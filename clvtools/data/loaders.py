"""Loaders of the data sets that the ``lifetimes`` package ships (CDNOW, donations).

clvtools does not ship these files: it reads them from an installed ``lifetimes`` (a test
dependency, ``pip install clvtools[test]``), found with :func:`importlib.util.find_spec`
without importing lifetimes' modules (which are slow to import and warn on new pandas).
Functions that lifetimes has (``lifetimes.datasets``) keep its name and return the same
DataFrame, and pass ``**kwargs`` to :func:`pandas.read_csv` as lifetimes does.

CDNOW (Fader & Hardie): the 23,570 customers who made their first purchase at CDNOW in the
first quarter of 1997, followed to the end of June 1998; the sample is a 1/10 random
subset of 2,357 of them, the one summarised in ``cdnow_customers_summary.csv`` (weeks,
calibration period to 1997-09-30) and used in the BG/NBD and Pareto/NBD papers.
"""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pandas as pd

__all__ = [
    "lifetimes_data_dir",
    "load_cdnow_sample",
    "load_cdnow_summary",
    "load_cdnow_summary_data_with_monetary_value",
    "load_cdnow_transactions",
    "load_donations",
    "load_transaction_data",
]

_INSTALL_ADVICE = (
    "What to do: install the reference package that ships these files, "
    "`pip install lifetimes==0.11.3`, or clvtools' test extras, `pip install clvtools[test]`."
)


def lifetimes_data_dir() -> Path:
    """The folder of the data files of the installed ``lifetimes`` package.

    Returns
    -------
    pathlib.Path
        ``.../site-packages/lifetimes/datasets``.

    Raises
    ------
    ImportError
        If lifetimes is not installed (or has no data folder); the message says what to
        install.
    """
    spec = find_spec("lifetimes")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "datasets"
        if folder.is_dir():
            return folder
    problem = (
        "The CDNOW and donations data sets are read from the 'lifetimes' package, "
        "which is not installed."
        if not locations
        else f"The installed 'lifetimes' package has no 'datasets' folder (looked in {locations})."
    )
    raise ImportError(f"{problem}\n{_INSTALL_ADVICE}", name="lifetimes")


def _path(filename: str) -> Path:
    path = lifetimes_data_dir() / filename
    if not path.is_file():
        raise ImportError(
            f"The data file {filename!r} is missing from {path.parent}: "
            f"the installed 'lifetimes' is not version 0.11.3 or is damaged.\n{_INSTALL_ADVICE}",
            name="lifetimes",
        )
    return path


def load_cdnow_summary(**kwargs) -> pd.DataFrame:
    """CDNOW sample, RFM summary of the calibration period (lifetimes' ``load_cdnow_summary``).

    Parameters
    ----------
    **kwargs
        Passed to :func:`pandas.read_csv`. Default ``index_col="ID"`` (lifetimes' own
        default is no index; pass ``index_col=None`` to get its frame exactly).

    Returns
    -------
    pandas.DataFrame
        2,357 rows indexed by ``ID`` (int, 1-2357): ``frequency`` (repeat purchase
        occasions, int), ``recency`` and ``T`` (weeks, float; calibration period ends
        1997-09-30).
    """
    kwargs.setdefault("index_col", "ID")
    return pd.read_csv(_path("cdnow_customers_summary.csv"), **kwargs)


def load_cdnow_summary_data_with_monetary_value(**kwargs) -> pd.DataFrame:
    """CDNOW sample summary with the mean spend of repeat purchases (as lifetimes).

    Returns
    -------
    pandas.DataFrame
        2,357 rows indexed by ``customer_id`` (int): ``frequency``, ``recency``, ``T``
        (weeks) and ``monetary_value`` (US dollars; mean of the repeat purchases, 0 for
        customers without any).
    """
    df = pd.read_csv(_path("cdnow_customers_summary_with_transactions.csv"), **kwargs)
    df.columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    return df.set_index("customer_id")


def load_donations(**kwargs) -> pd.DataFrame:
    """Donations to a US non-profit, 1995 cohort, 6 annual periods (lifetimes' data set).

    Returns
    -------
    pandas.DataFrame
        22 rows, one per distinct (frequency, recency): ``frequency``, ``recency`` (periods,
        int), ``periods`` (6, the number of opportunities) and ``weights`` (number of
        donors with that history; 11,104 in total). The BG/BB model's data.
    """
    return pd.read_csv(_path("donations.csv"), **kwargs)


def load_transaction_data(**kwargs) -> pd.DataFrame:
    """lifetimes' synthetic example log (``example_transactions.csv``), as lifetimes returns it.

    Note that in lifetimes this name is *not* the CDNOW log: it is a small artificial log
    for 2014. For the CDNOW master log use :func:`load_cdnow_transactions`.

    Returns
    -------
    pandas.DataFrame
        15,273 rows: ``date`` (str, ``"2014-03-08 00:00:00"``; pass
        ``parse_dates=["date"]`` for datetimes) and ``id`` (int customer id).
    """
    return pd.read_csv(_path("example_transactions.csv"), **kwargs)


def _read_cdnow_log(filename: str, names: list[str], id_cols: list[str]) -> pd.DataFrame:
    # Whitespace-separated columns with CRLF line ends; ids are read as text to keep their
    # leading zeros, dates as text and parsed with an explicit format (YYYYMMDD).
    df = pd.read_csv(
        _path(filename),
        sep=r"\s+",
        header=None,
        names=names,
        skiprows=1 if filename == "CDNOW_master.txt" else 0,
        dtype={**{c: str for c in id_cols}, "date": str, "number_of_cds": "int64",
               "dollar_value": "float64"},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df


def load_cdnow_transactions() -> pd.DataFrame:
    """The CDNOW master transaction log (``CDNOW_master.txt``): 23,570 customers.

    Customers who made their first purchase at CDNOW between 1997-01-01 and 1997-03-31,
    with every purchase up to 1998-06-30. Rows are as recorded: one customer may have
    several rows on one day (one purchase occasion in clvtools' summaries), and 80 rows
    have a dollar value of 0.

    Returns
    -------
    pandas.DataFrame
        69,659 rows: ``customer_id`` (str with leading zeros, ``"00001"``), ``date``
        (datetime64, whole days), ``number_of_cds`` (int), ``dollar_value`` (float, US
        dollars).
    """
    return _read_cdnow_log(
        "CDNOW_master.txt",
        ["customer_id", "date", "number_of_cds", "dollar_value"],
        ["customer_id"],
    )


def load_cdnow_sample() -> pd.DataFrame:
    """The 1/10 CDNOW sample log (``CDNOW_sample.txt``): 2,357 customers.

    Returns
    -------
    pandas.DataFrame
        6,919 rows: ``customer_id`` (str, ``"0001"`` to ``"2357"``: the sample id, the
        ``ID`` of :func:`load_cdnow_summary` as text), ``master_customer_id`` (str, the
        id in :func:`load_cdnow_transactions`), ``date`` (datetime64), ``number_of_cds``
        (int), ``dollar_value`` (float, US dollars).
    """
    df = _read_cdnow_log(
        "CDNOW_sample.txt",
        ["master_customer_id", "customer_id", "date", "number_of_cds", "dollar_value"],
        ["master_customer_id", "customer_id"],
    )
    return df[["customer_id", "master_customer_id", "date", "number_of_cds", "dollar_value"]]
