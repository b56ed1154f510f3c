"""The manifest of output files: the README's table lists exactly its files, a run writes
nothing else, and attachments outside it are refused."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvtools.api import analyze, demo
from clvtools.config import Settings
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError
from clvtools.report.outputs import OUTPUTS, to_cents, write_outputs

#: The module's fixtures are built once: its tests on one worker (a module-scoped fixture is
#: otherwise built again on each worker that runs one of them)
pytestmark = pytest.mark.xdist_group("report_outputs")

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_outputs() -> set[str]:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| file | content |"):]
    table = table[:table.index("\n\n")]
    names = set()
    for row in table.splitlines()[2:]:
        names |= set(re.findall(r"`([^`]+\.(?:csv|json|toml|html|xlsx|parquet|log))`",
                                row.split("|")[1]))
    return names


def test_readme_table_lists_exactly_the_manifest():
    manifest = [o.name for o in OUTPUTS]
    assert len(manifest) == len(set(manifest))
    assert _readme_outputs() == set(manifest)
    assert all(o.meaning for o in OUTPUTS)


@pytest.fixture(scope="module")
def small_run():
    base = generate_customer_base(1500, seed=2)
    return analyze(base.transactions, customers=base.customers.drop(columns="acquisition_date"),
                   config=Settings(horizon=26))


def _written(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_a_run_writes_only_manifest_files(small_run, tmp_path):
    out = small_run.write(tmp_path / "out")
    written = _written(out)
    manifest = {o.name for o in OUTPUTS}
    assert written <= manifest
    # without contracts, demo input or the command line's log, everything else is there
    absent = {n for n in manifest if n.startswith(("contract", "demo_input/"))} | {
        "run.log", "customers.parquet", "targets.parquet", "win_back.parquet",
        "early_warning.parquet"}
    assert written == manifest - absent


def test_attachments_outside_the_manifest_are_refused(small_run, tmp_path):
    with pytest.raises(ValueError, match="not in the manifest"):
        write_outputs(small_run.analysis, tmp_path / "out",
                      attachments={"extra.csv": small_run.customers})
    assert not (tmp_path / "out").exists()


def test_the_demo_writes_its_input_with_the_outputs(tmp_path):
    results = demo(1000, seed=4)
    assert results.settings.seed == 4
    written = _written(results.write(tmp_path / "demo"))
    manifest = {o.name for o in OUTPUTS}
    assert written == manifest - {n for n in manifest if n.startswith("contract")} - {
        "run.log", "customers.parquet", "targets.parquet", "win_back.parquet",
        "early_warning.parquet"}
    with pytest.raises(ClvInputError, match="'bgnbd' or 'pnbd'"):
        demo(1000, model="gamma")


def test_analyze_takes_its_config_as_settings_a_dict_or_a_toml_file(tmp_path):
    base = generate_customer_base(1000, seed=6)
    (tmp_path / "run.toml").write_text("horizon = 20\nchurn_after = 22\n")
    for config in (Settings(horizon=20, churn_after=22), {"horizon": 20, "churn_after": 22},
                   tmp_path / "run.toml", str(tmp_path / "run.toml")):
        results = analyze(base.transactions, config=config, seed=9)
        assert (results.settings.horizon, results.settings.churn_after) == (20, 22)
        assert results.settings.seed == 9
    with pytest.raises(ClvInputError, match="churn_afterr"):
        analyze(base.transactions, config={"churn_afterr": 3})


def test_the_same_input_and_seed_give_byte_identical_outputs(small_run, tmp_path):
    """Sums in DuckDB are order-independent (fsum) and nothing reads the clock: a second run
    writes the same bytes, model files and data_quality.json included."""
    base = generate_customer_base(1500, seed=2)
    again = analyze(base.transactions, customers=base.customers.drop(columns="acquisition_date"),
                    config=Settings(horizon=26))
    first, second = small_run.write(tmp_path / "a"), again.write(tmp_path / "b")
    names = sorted(_written(first))
    assert names == sorted(_written(second))
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_money_to_the_cent_keeps_every_other_column_as_it_is():
    """to_cents rounds the money columns and passes the others through uncopied: the same
    table as assigning the rounded columns, index, order and dtypes included."""
    table = pd.DataFrame({"customer_id": ["a", "b", "c"],
                          "expected_revenue": [1.234, np.nan, 2.005],
                          "priority_rank": pd.array([1, None, 2], dtype="Int64"),
                          "last_purchase": pd.to_datetime(["2024-01-01", None, "2024-02-01"]),
                          "cell": pd.Categorical(["x", "y", "x"]), "cost": [1, 2, 3]},
                         index=[5, 6, 7])
    cents = to_cents(table)
    pd.testing.assert_frame_equal(cents, table.assign(expected_revenue=[1.23, np.nan, 2.0]))
    assert np.shares_memory(cents["customer_id"].to_numpy(), table["customer_id"].to_numpy())
    assert table["expected_revenue"].iloc[0] == 1.234      # the caller's table is untouched


def test_money_to_the_cent_leaves_text_that_looks_like_dates_as_text():
    """A text column of date-like values, a repeated index label: to_cents neither parses the
    text nor realigns the rows."""
    table = pd.DataFrame({"note": ["2024-01-01", "2024-01-02", None],
                          "expected_revenue": [1.234, 5.678, 9.1011]}, index=[3, 3, 4])
    cents = to_cents(table)
    pd.testing.assert_frame_equal(cents, table.assign(expected_revenue=[1.23, 5.68, 9.10]))
    assert cents["note"].dtype == object
