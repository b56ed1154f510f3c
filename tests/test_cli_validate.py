"""``clvtools validate``: the inputs and settings checked by analyze's own reading, in seconds;
and the mistakes that analyze finds before its work (config file, output folder, settings),
each a clear message with exit status 2 and no traceback."""
import subprocess
import sys

import pandas as pd
import pytest

from clvtools.api import analyze, validate
from clvtools.cli import main
from clvtools.datasets import generate_customer_base


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """500 generated customers, with two refunds, a duplicated row, and a customers file with
    an id that never bought."""
    root = tmp_path_factory.mktemp("validate")
    base = generate_customer_base(500, seed=5)
    tx = base.transactions.copy()
    refunds = tx.iloc[:2].assign(amount=-4.0)
    tx = pd.concat([tx, refunds, tx.iloc[[10]]], ignore_index=True)
    customers = base.customers.drop(columns="acquisition_date")
    customers = pd.concat([customers, customers.iloc[[0]].assign(customer_id="ghost")])
    tx.to_csv(root / "tx.csv", index=False)
    customers.to_csv(root / "customers.csv", index=False)
    return root


def test_validate_counts_what_analyze_counts(files):
    """The same reading: the input sections of data_quality.json agree to the last count."""
    tx, customers = str(files / "tx.csv"), str(files / "customers.csv")
    # one purchase model without attributes: the reading is the point, not the fits
    settings = {"duplicate_rows": "drop", "value_model": "bgnbd", "value_covariates": False}
    check = validate(tx, customers=customers, **settings)
    run = analyze(tx, customers=customers, **settings)
    quality = run.data_quality
    assert check.quality()["transactions"] == quality["transactions"]
    assert check.quality()["customers"] == quality["customers"]
    assert check.quality()["timeline"] == quality["timeline"]
    excluded = quality["transactions"]["excluded_by_reason"]
    assert excluded["negative_amounts"] == 2 and excluded["duplicate_rows"] == 1


def test_the_command_prints_what_would_be_excluded_and_why(files, capsys):
    code = main(["validate", str(files / "tx.csv"), "--customers", str(files / "customers.csv")])
    out = capsys.readouterr().out
    assert code == 0
    assert "would exclude 2 rows: negative amounts (negative_amounts = 'drop'" in out
    assert "1 exact duplicate rows would be kept (duplicate_rows = 'keep')" in out
    assert "only in this file 1" in out and "ghost" in out
    assert "Valid" in out


def test_an_unusable_input_is_exit_2_with_the_readers_message(files, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    pd.read_csv(files / "tx.csv").rename(columns={"date": "day"}).to_csv(bad, index=False)
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "'date'" in err and "Traceback" not in err
    assert main(["validate", str(files / "tx.csv"), "--after-observation-end", "drop",
                 "--observation-end", "2023-13-01"]) == 2
    assert "observation_end" in capsys.readouterr().err


@pytest.fixture
def config_files(tmp_path):
    latin = tmp_path / "latin.toml"
    latin.write_bytes("horizon = 20\n# région\n".encode("latin-1"))
    huge = tmp_path / "huge.toml"
    huge.write_text("landmarks = 100000000000000000000\n")
    notes = tmp_path / "busy"
    notes.mkdir()
    (notes / "data_quality.json").write_text("{}")   # an output, with a file of the user's
    (notes / "notes.txt").write_text("mine")
    (tmp_path / "a_file").write_text("x")
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["--config", "{root}/latin.toml"], "not UTF-8"),
    (["--config", "{root}"], "config path is a folder"),
    (["--config", "{root}/huge.toml"], "'landmarks' setting must be a whole number from 1 to"),
    (["--landmarks", "99999999999"], "'landmarks' setting must be a whole number from 1 to"),
    (["--memory-limit", "plenty"], "'memory_limit' setting must be a size"),
    (["--horizon", "1e9"], "horizon (1000000000.0 weeks) must be at most 100 years"),
    (["--out", "{root}/a_file/out"], "cannot be written"),
    (["--out", "{root}/busy"], "did not write: notes.txt"),
])
def test_analyze_refuses_before_its_work(files, config_files, capsys, args, message):
    args = [a.format(root=config_files) for a in args]
    if "--out" not in args:
        args += ["--out", str(config_files / "out")]
    code = main(["analyze", str(files / "tx.csv"), *args])
    captured = capsys.readouterr()
    assert code == 2 and message in captured.err, captured.err
    assert "Traceback" not in captured.err
    assert "Reading" not in captured.out          # no step of the analysis started
    assert (config_files / "busy" / "notes.txt").read_text() == "mine"


def test_a_memory_limit_too_small_for_the_data_is_a_message(files, capsys):
    assert main(["validate", str(files / "tx.csv"), "--memory-limit", "2MB"]) == 2
    err = capsys.readouterr().err
    assert "Out of Memory" in err and "Traceback" not in err


def test_no_traceback_reaches_the_real_console(files, tmp_path):
    """One real process: the console shows the message alone."""
    (tmp_path / "c.toml").write_bytes(b"horizon = 20 # \xe9\n")
    run = subprocess.run([sys.executable, "-m", "clvtools.cli", "validate", str(files / "tx.csv"),
                          "--config", str(tmp_path / "c.toml")], capture_output=True, text=True)
    assert run.returncode == 2 and "not UTF-8" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
