"""RFM summary of about 8M transactions / 1M customers from one Parquet file.

clvtools (DuckDB reads the Parquet file) against lifetimes 0.11.3's
``summary_data_from_transaction_data`` (pandas reads the same file; the read is included),
each in a fresh process (imports excluded from the time), in one run: outputs checked equal,
both times, the ratio and the peak resident memory printed; each side runs ``repeats`` times
(median time reported, the machine is noisy).
Usage: ``python benchmarks/bench_rfm_summary.py [n_customers [repeats]]``.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import report, run_repeated  # noqa: E402

from clvtools.datasets import generate_customer_base  # noqa: E402


def main(n_customers: int = 1_000_000, repeats: int = 3) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="clv-bench-rfm-"))
    t0 = time.perf_counter()
    # about 8 transactions per customer: twice the default purchase rate
    base = generate_customer_base(n_customers, seed=1, params={"alpha": 3.0})
    path = tmp / "transactions.parquet"
    base.transactions.to_parquet(path, index=False)
    n_rows = len(base.transactions)
    print(f"{n_rows:,} transactions, {n_customers:,} customers "
          f"(generated and written in {time.perf_counter() - t0:.1f} s) -> {path}")
    del base

    ours = run_repeated(f"""
        from clvtools.utils import summary_data_from_transaction_data
        _t0 = time.perf_counter()  # imports excluded, file read included
        out = summary_data_from_transaction_data({str(path)!r}, "customer_id", "date", "amount")
        result["seconds"] = time.perf_counter() - _t0
        out.to_parquet({str(tmp / 'ours.parquet')!r})
    """, repeats)
    peer = run_repeated(f"""
        import warnings; warnings.simplefilter("ignore")
        import pandas as pd
        from lifetimes.utils import summary_data_from_transaction_data
        _t0 = time.perf_counter()  # imports excluded, file read included
        tx = pd.read_parquet({str(path)!r})
        out = summary_data_from_transaction_data(tx, "customer_id", "date", "amount")
        result["seconds"] = time.perf_counter() - _t0
        out.to_parquet({str(tmp / 'peer.parquet')!r})
    """, repeats)
    a = pd.read_parquet(tmp / "ours.parquet")
    b = pd.read_parquet(tmp / "peer.parquet").sort_index()
    assert a.index.equals(b.index), "customer ids differ"
    for column in ("frequency", "recency", "T"):
        assert np.array_equal(a[column].to_numpy(), b[column].to_numpy()), column
    np.testing.assert_allclose(a["monetary_value"], b["monetary_value"], rtol=1e-12)
    print("outputs equal (counts and times exactly, monetary values to 1e-12 relative)")
    report(f"RFM summary, {n_rows:,} transactions (Parquet read included)", ours, peer, "lifetimes")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
