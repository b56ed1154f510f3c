"""The chunked run's out-of-time validation of the churn model: its churn_validation.csv and
churn_calibration.csv equal the standard run's where the evaluation landmark's rows are
fewer than ``churn_sample_rows``; past it, the validation model is still the standard one
(the same stratified training sample) and each metric on the uniform evaluation sample is
within its stated sampling error of the standard figure."""
from __future__ import annotations

import numpy as np
import pandas as pd

from clvtools import api
from clvtools.config import Settings
from clvtools.datasets import generate_customer_base
from clvtools.pipeline import build_timeline, churn_validation
from clvtools.pipeline.inputs import read_inputs
from clvtools.report.sections import models
from clvtools.scale import chunked_validation
from clvtools.scale.chunked_report import NOT_COMPUTED, chunked_sections

SETTINGS = {"value_model": "bgnbd", "push_capacity": 25}
NAMES = ("churn_validation.csv", "churn_calibration.csv")


def _base(customers: int):
    # three years: the history holds the validation's two landmarks a horizon apart
    return generate_customer_base(customers, seed=8, start="2022-01-01",
                                  observation_end="2024-12-31")


def test_the_chunked_runs_validation_files_equal_the_standard_files(tmp_path):
    # with the customer attributes: covariates of both validation models
    base = _base(1500)
    standard = api.analyze(base.transactions, customers=base.customers, **SETTINGS)
    chunked = api.analyze_chunked(base.transactions, customers=base.customers, chunk_rows=400,
                                  **SETTINGS)
    assert any("channel" in name for name in chunked.scorers.churn.params_.index)
    standard.write(tmp_path / "standard")
    chunked.write(tmp_path / "chunked")
    for name in NAMES:
        got, expected = (pd.read_csv(tmp_path / engine / name) for engine in ("chunked",
                                                                                "standard"))
        assert len(expected) >= 6 and list(got.columns) == list(expected.columns)
        numbers = [c for c in got.columns if pd.api.types.is_float_dtype(expected[c])]
        for column in numbers:
            np.testing.assert_allclose(got[column], expected[column], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{name}: {column}")
        text = [c for c in got.columns if c not in numbers]
        pd.testing.assert_frame_equal(got[text], expected[text])
    note = next(n for n in standard.analysis.risk.notes if "validated out of time" in n)
    # the standard run's note, and its warning of a calibration off by more than 0.05 in a
    # decile (0.24 on this demo), among the lines the command line prints
    warning = next(w for w in standard.analysis.warnings() if "Out of time" in w)
    assert f"{note} {warning}" in chunked.notes
    assert not any("out-of-time" in part for part in NOT_COMPUTED.get("models", ()))
    # the report's churn parts: the standard hazard-ratio and calibration charts, and the
    # standard proportional-hazards and validation tables, cell for cell
    blocks = {engine: {(b.kind, getattr(b, "caption", "")): b for b in section.blocks}
              for engine, section in (
                  ("standard", models.section(standard.analysis)),
                  ("chunked", next(s for s in chunked_sections(chunked) if s.id == "models")))}
    churn = [key for key in blocks["chunked"]
             if key[1].startswith(("The proportional-hazards", "Out-of-time validation"))
             or (key[0] == "chart" and "parameters" not in key[1]
                 and not blocks["chunked"][key].title.startswith("Holdout validation"))]
    assert sorted(k[0] for k in churn) == ["chart", "chart", "table", "table"]
    for key in churn:
        got, expected = blocks["chunked"][key], blocks["standard"][key]
        if key[0] == "table":
            assert (got.columns, got.rows) == (expected.columns, expected.rows), key
        else:
            assert got.title == expected.title, key
    # its landmark rows are dropped once read
    assert chunked_validation.VALIDATION_TABLE not in {
        r[0] for r in chunked.log.con.execute("SHOW TABLES").fetchall()}


def _capture_models(monkeypatch) -> list:
    """Record the model each validation evaluates, in the order of the calls (both engines
    evaluate in :func:`~clvtools.pipeline.churn_validation.validate_on_rows`)."""
    seen, evaluate = [], churn_validation.validate_out_of_time

    def recorded(model, *args, **kwargs):
        seen.append(model)
        return evaluate(model, *args, **kwargs)

    monkeypatch.setattr(churn_validation, "validate_out_of_time", recorded)
    return seen


def test_past_the_sample_rows_the_model_is_the_standard_one_and_metrics_within_error(
        monkeypatch):
    s = Settings(**SETTINGS, churn_sample_rows=1000)
    inputs = read_inputs(_base(5000).transactions, None, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    evaluated = _capture_models(monkeypatch)
    expected, _ = churn_validation.validate_churn_model(inputs, timeline, s)
    got, note, returned = chunked_validation.chunked_churn_validation(
        inputs.log, timeline, s, python_limit="300MB")
    # once its rows are fetched, DuckDB holds the run's smaller share beside pandas' tables
    limit = inputs.log.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit == "286.1 MiB"       # 300 MB in DuckDB's units
    # the same training sample, hence the same model
    want, have = evaluated
    assert want.sample_ is not None and have.sample_ == want.sample_
    assert returned is have         # the model the targeting evaluation scores with
    pd.testing.assert_series_equal(have.params_, want.params_, rtol=1e-9)
    # the evaluation on a uniform sample of churn_sample_rows rows: said, and within error
    rows = int(got["churn_calibration"]["n"].sum())
    assert rows == s.churn_sample_rows < int(expected["churn_calibration"]["n"].sum())
    assert "uniform sample of 1,000" in note
    assert got["churn_validation"]["note"].str.contains("uniform sample of 1,000").all()
    metrics = [frame["churn_validation"].set_index("metric")["value"]
               for frame in (got, expected)]
    error = 1 / np.sqrt(rows)
    tolerance = pd.Series(error, index=metrics[1].index)
    # a decile's observed share is read on a tenth of the rows
    tolerance["max_abs_calibration_error"] = 1 / np.sqrt(rows / 10)
    gap = (metrics[0] - metrics[1]).abs()
    assert (gap <= tolerance).all(), gap
    assert gap.max() > 0         # evaluated on other rows indeed


def test_a_short_history_is_said_and_writes_no_validation():
    s = Settings(**SETTINGS)
    inputs = read_inputs(generate_customer_base(300, seed=1).transactions, None, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    got, note, _ = chunked_validation.chunked_churn_validation(inputs.log, timeline, s)
    expected = churn_validation.validate_churn_model(inputs, timeline, s)
    assert got == {} and (got, note) == expected
