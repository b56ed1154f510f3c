"""The command line: the main job end to end, exit codes, and no traceback for a user's mistake."""
import json
import re
import subprocess
import sys
import tomllib

import pandas as pd
import pytest
from conftest import write_csv

from clvtools.cli import main
from clvtools.config import Settings, load_settings

EXPECTED_FILES = {"data_quality.json", "config.toml", "rfm.csv", "survival_table.csv", "kpis.csv",
                  "cohorts.csv", "lifecycle.csv"}


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    assert main(["demo", "--out", str(out), "--customers", "2000", "--seed", "3"]) == 0
    return out


def test_demo_writes_every_table_and_accounts_for_every_row(demo_out):
    assert EXPECTED_FILES <= {p.name for p in demo_out.iterdir()}
    quality = json.loads((demo_out / "data_quality.json").read_text())
    tx = quality["transactions"]
    assert tx["rows_read"] == tx["rows_used"] + sum(tx["excluded_by_reason"].values())
    assert quality["customers"]["matching"]["only_in_transactions"] == 0
    rfm = pd.read_csv(demo_out / "rfm.csv", dtype={"customer_id": str})
    assert len(rfm) == tx["customers"] == 2000
    assert rfm["customer_id"].is_unique
    inputs = pd.read_csv(demo_out / "demo_input" / "transactions.csv")
    assert len(inputs) == tx["rows_read"]
    survival = pd.read_csv(demo_out / "survival_table.csv")
    assert {"customer_id", "landmark", "duration", "event", "channel", "plan"} <= set(
        survival.columns)
    settings = tomllib.loads((demo_out / "config.toml").read_text())
    assert settings["seed"] == 3 and settings["time_unit"] == "week"


def test_analyze_reruns_the_demo_input_with_config_and_flags(demo_out, tmp_path):
    config = tmp_path / "settings.toml"
    config.write_text('time_unit = "day"\nchurn_after = 200\nat_risk_after = 90\nhorizon = 120\n')
    out = tmp_path / "run"
    status = main(["analyze", str(demo_out / "demo_input" / "transactions.csv"),
                   "--customers", str(demo_out / "demo_input" / "customers.csv"),
                   "--config", str(config), "--horizon", "100", "--out", str(out)])
    assert status == 0
    resolved = tomllib.loads((out / "config.toml").read_text())
    assert (resolved["time_unit"] == "day" and resolved["churn_after"] == 200
            and resolved["horizon"] == 100)
    original = pd.read_csv(
        demo_out / "rfm.csv", dtype={"customer_id": str}).set_index("customer_id")
    rerun = pd.read_csv(out / "rfm.csv", dtype={"customer_id": str}).set_index("customer_id")
    # the same purchases, now in days instead of weeks
    pd.testing.assert_series_equal(rerun["frequency"], original["frequency"])
    pd.testing.assert_series_equal(rerun["T"] / 7, original["T"], rtol=1e-8)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--horizon", "-3"], "'horizon' setting must be a positive number"),
        (["--time-unit", "year"], "'time_unit' setting should be"),
        (["--datetime-col", "day"], "Column 'day' is missing"),
        (["--observation-end", "2024-01-01"], "after the observation end"),
    ],
)
def test_user_mistakes_exit_2_with_one_message(tmp_path, capsys, args, message):
    path = write_csv(tmp_path, "customer_id,date,amount\n1,2024-01-01,3\n1,2024-03-01,4\n")
    status = main(["analyze", str(path), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err.replace("\n", " ")
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unknown_config_key_suggests_the_right_one(tmp_path, capsys):
    path = write_csv(tmp_path, "customer_id,date,amount\n1,2024-01-01,3\n")
    config = tmp_path / "c.toml"
    config.write_text("churn_afterr = 3\n")
    assert main(["analyze", str(path), "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "Did you mean 'churn_after'?" in capsys.readouterr().err


def test_existing_foreign_folder_is_never_overwritten(tmp_path, capsys):
    path = write_csv(tmp_path, "customer_id,date,amount\n1,2024-01-01,3\n")
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["analyze", str(path), "--out", str(out)]) == 2
    assert (out / "notes.txt").read_text() == "keep me"
    assert "not a clvtools output" in capsys.readouterr().err


def test_console_script_prints_no_traceback_for_a_bad_file(tmp_path):
    path = write_csv(tmp_path, "customer_id,date,amount\n1,2024-01-01,3\n2,not-a-date,4\n")
    proc = subprocess.run([sys.executable, "-m", "clvtools.cli", "analyze", str(path), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "Dates could not be parsed" in proc.stderr and "line" in proc.stderr
    unknown = subprocess.run([sys.executable, "-m", "clvtools.cli", "analyze", str(path),
                              "--out", "x", "--horizn", "3"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr


def test_contracts_give_durations_and_cumulative_incidence_per_reason(tmp_path):
    tx = write_csv(tmp_path, "customer_id,date,amount\n" + "".join(
        f"{c},2023-{m:02d}-0{1 + c % 7},{10 + c}\n" for c in range(1, 30) for m in (1, 3, 6)
    ) + "1,2024-12-01,5\n")
    contracts = write_csv(tmp_path, "customer_id,start,end,end_reason\n" + "".join(
        f"{c},2023-01-01,{'' if c % 3 == 0 else f'2024-0{1 + c % 9}-15'},"
        f"{'' if c % 3 == 0 else ('voluntary' if c % 2 else 'non_payment')}\n" for c in range(1, 30)
    ), "contracts.csv")
    out = tmp_path / "out"
    assert main(["analyze", str(tx), "--contracts", str(contracts), "--out", str(out),
                 "--horizon", "26"]) == 0
    durations = pd.read_csv(out / "contracts_survival.csv")
    assert len(durations) == 29 and set(durations["event"]) == {0, 1}
    incidence = pd.read_csv(out / "contract_cumulative_incidence.csv")
    assert {"voluntary", "non_payment", "all"} <= set(incidence["reason"])
    last = incidence.sort_values("time").groupby("reason")["cumulative_incidence"].last()
    assert last["voluntary"] + last["non_payment"] == pytest.approx(last["all"])


def test_analyze_prints_what_it_did_to_the_attributes(tmp_path, capsys):
    from clvtools.datasets import generate_customer_base

    base = generate_customer_base(2000, seed=1)
    customers = base.customers.drop(columns="acquisition_date").assign(
        signup_date=base.customers["acquisition_date"].dt.strftime("%Y-%m-%d"),  # ISO text
        email=base.customers["customer_id"] + "@example.com",                    # an id
        source="import",                                                         # constant
    )
    tx, cu = tmp_path / "tx.csv", tmp_path / "customers.csv"
    base.transactions.to_csv(tx, index=False)
    customers.to_csv(cu, index=False)
    out = tmp_path / "out"
    assert main(["analyze", str(tx), "--customers", str(cu), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Traceback" not in printed
    lines = [line for line in printed.splitlines() if line.startswith("Attribute ")]
    assert len(lines) == 3
    assert "'signup_date': dates, used as days since the date" in lines[0]
    assert "'email' left out of the models: one level per customer (2,000 levels)" in lines[1]
    assert "'source' left out of the models: a single value" in lines[2]
    assert printed.index("'source' left out") < printed.index("Done")
    # the value model's automatic choice is said on the console, and why
    flat = " ".join(printed.split())
    assert re.search(r"Value model (bgnbd|pnbd), chosen automatically by the lowest holdout "
                     r"error", flat)
    typed = json.loads((out / "data_quality.json").read_text())["customers"]["typed"]
    assert {c: t["action"] for c, t in typed.items()} == {
        "channel": "used", "region": "used", "plan": "used", "signup_date": "duration_days",
        "email": "dropped_id_like", "source": "dropped_constant"}
    assert typed["email"]["levels"] == 2000
    survival = pd.read_csv(out / "survival_table.csv", nrows=5)
    assert "signup_date" in survival.columns and "email" not in survival.columns


def test_config_example_lists_every_setting_with_its_meaning_and_default(tmp_path, capsys):
    assert main(["config", "--example"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "example.toml"
    path.write_text(text)
    assert load_settings(path) == Settings()  # every key at its default, and valid
    for name, info in Settings.model_fields.items():
        assert info.description and f"# {info.description}" in text, name
        assert re.search(rf"^#? ?{name} = ", text, re.M), name
    assert main(["config"]) == 2 and "--example" in capsys.readouterr().err


def test_help_gives_each_setting_its_meaning(capsys):
    assert main(["analyze", "--help"]) == 0
    # rich draws the options in a box: drop its borders before reading the words
    help_text = " ".join(capsys.readouterr().out.replace("\u2502", " ").split())
    assert "time units without a purchase after which churn is declared" in help_text


def _small_log_with_a_return(tmp_path):
    """29 customers with three purchases each, one of them back later, and one return (a
    negative amount, dropped and counted)."""
    return write_csv(tmp_path, "customer_id,date,amount\n" + "".join(
        f"{c},2023-{m:02d}-0{1 + c % 7},{10 + c}\n" for c in range(1, 30) for m in (1, 3, 6)
    ) + "1,2024-12-01,5\n2,2024-02-01,-5\n")


def test_a_run_ends_with_its_figures_and_warnings_and_keeps_them_in_run_log(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["analyze", str(_small_log_with_a_return(tmp_path)), "--out", str(out),
                 "--horizon", "26"]) == 0
    printed = capsys.readouterr().out
    # stdout is not a terminal under pytest: no spinner, no colour or cursor codes
    assert "\x1b[" not in printed and not set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏") & set(printed)
    flat = " ".join(printed.split())
    assert "clvtools: the run in figures" in flat
    for label in ("Customers 29 (", "Revenue at risk", "Contacts", "Cost of the plan",
                  "Expected net benefit", f"Workbook: {out.resolve() / 'forecast.xlsx'}"):
        assert label in flat, label
    excluded = ("Warning: 1 of the 89 rows of the transaction log were left out (1 negative "
                "amounts)")
    fallback = "Warning: Churn probabilities of 1 customers come from the value model"
    assert excluded in flat and fallback in flat
    log = (out / "run.log").read_text(encoding="utf-8")
    flat_log = " ".join(log.split())
    assert excluded in flat_log and fallback in flat_log
    assert "clvtools: the run in figures" in flat_log and "Customers 29 (" in flat_log
    assert re.search(r"^\[ *\d+\.\d s\] Fitting the value model", log, re.M)
    assert "\x1b[" not in log


@pytest.mark.parametrize("command", [[], ["analyze"], ["demo"], ["config"], ["version"]])
def test_every_help_shows_an_example(capsys, command):
    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "Example" in text
    assert re.search(rf"^ *clvtools {command[0] if command else 'demo'} ", text + " ", re.M)


def test_pseudonymise_without_a_key_exits_2_before_the_work(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CLVTOOLS_PSEUDONYM_KEY", raising=False)
    out = tmp_path / "out"
    assert main(["analyze", str(_small_log_with_a_return(tmp_path)), "--pseudonymise",
                 "--out", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "CLVTOOLS_PSEUDONYM_KEY is not set" in err and "Traceback" not in err
    assert not out.exists()
