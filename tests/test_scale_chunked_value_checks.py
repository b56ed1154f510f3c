"""The value model's checks of a chunked run (:mod:`clvtools.scale.chunked_value_checks`): the
standard engine's checks on the RFM table's columns fetched in customer order, a covariate
purchase model's linear predictors bound a chunk at a time (the whole runs' value_checks.csv
is compared in test_scale_chunked.py, on its shared runs)."""
from dataclasses import replace

import duckdb
import pytest
from test_scale_chunked import assert_checks_equal

from clvtools.data.chunked_tables import chunk_bounds
from clvtools.data.rfm import rfm_summary
from clvtools.data.transactions import read_transactions
from clvtools.datasets import generate_customer_base
from clvtools.pipeline.value_checks import checks_table, value_checks
from clvtools.pipeline.value_models import BoundCovariates, fit_value_models
from clvtools.scale.chunked_value_checks import chunked_value_checks


def test_pareto_nbd_with_covariates_without_amounts_bound_a_chunk_at_a_time():
    """Without amounts (no spend check) and with a Pareto/NBD with covariates whose linear
    predictors come from the attributes bound a chunk of customers at a time: the standard
    checks of the model bound to every customer at once."""
    demo = generate_customer_base(900, seed=11)
    log = read_transactions(demo.transactions[["customer_id", "date"]], monetary_value_col=None)
    rfm = rfm_summary(log)
    attributes = demo.customers.set_index("customer_id").loc[rfm.index,
                                                             ["channel", "region", "plan"]]
    models = fit_value_models(rfm, "pnbd", attributes)
    assert isinstance(models.purchases, BoundCovariates) and models.spend is None
    expected, warnings = value_checks(models.purchases, rfm, None, "pnbd", seed=3)
    assert warnings == [] and list(expected) == ["frequency_fit"]
    con = duckdb.connect()
    con.register("rfm_frame", rfm.reset_index())
    con.register("attributes_frame", attributes.reset_index())
    con.execute("CREATE TABLE rfm AS SELECT * FROM rfm_frame ORDER BY customer_id")
    bounds = chunk_bounds(con, "rfm", 250)
    assert len(bounds) == 4
    unbound = replace(models, purchases=models.purchases.model)
    got, warnings = chunked_value_checks(con, "rfm", unbound, "pnbd", holdout_summary=None,
                                         covariates="attributes_frame", bounds=bounds, seed=3)
    assert warnings == []
    assert_checks_equal(got, expected)
    assert checks_table(got, "pnbd")["check"].tolist() == ["frequency_fit"]
    # the covariates matter: without them the model is not checked at all
    with pytest.raises(ValueError, match="attributes"):
        chunked_value_checks(con, "rfm", unbound, "pnbd", holdout_summary=None,
                             covariates=None, bounds=bounds, seed=3)
