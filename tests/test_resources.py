"""Bounded resources: DuckDB spills into a folder of its own in the system's temporary folder
(or temp_directory), never the working directory, removed when the run ends or fails (or by
the next run after a kill); memory_limit reaches DuckDB."""
import gc
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from clvtools.api import validate
from clvtools.config import load_settings
from clvtools.data.engine import connect
from clvtools.errors import ClvInputError


def _spill_folders(parent: Path) -> list[Path]:
    return sorted(parent.glob(f"clvtools-duckdb-{os.getpid()}-*"))


def _setting(con, name: str) -> str:
    return con.execute(f"SELECT current_setting('{name}')").fetchone()[0]


def test_duckdb_spills_into_its_own_folder_and_removes_it(tmp_path, monkeypatch):
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    con = connect(threads=1, memory_limit="64MB", temp_directory=tmp_path / "spill")
    spill = Path(_setting(con, "temp_directory"))
    assert spill.parent == tmp_path / "spill" and _spill_folders(spill.parent) == [spill]
    assert _setting(con, "memory_limit") == "61.0 MiB"
    con.execute("SET preserve_insertion_order = false")
    # about 100 MB of text under a 64 MB limit: DuckDB must write temporary files
    con.execute("CREATE TEMP TABLE t AS SELECT md5(range::VARCHAR) AS s FROM range(2000000)")
    assert any(p.suffix == ".tmp" for p in spill.iterdir())
    assert list(workdir.iterdir()) == []          # nothing in the working directory
    del con
    gc.collect()
    assert not spill.exists()


def test_the_default_spill_folder_is_in_the_systems_temporary_folder():
    con = connect()
    spill = Path(_setting(con, "temp_directory"))
    assert spill.parent == Path(tempfile.gettempdir()) and spill.is_dir()
    del con
    gc.collect()
    assert not spill.exists()


def test_a_killed_runs_spill_folder_is_removed_by_the_next_connection(tmp_path):
    dead = tmp_path / f"clvtools-duckdb-{2**22 + 7}-abcd1234"   # beyond Linux's pid_max
    dead.mkdir()
    (dead / "duckdb_temp_1.tmp").write_bytes(b"x" * 10)
    live = tmp_path / f"clvtools-duckdb-{os.getppid()}-abcd1234"
    live.mkdir()
    con = connect(temp_directory=tmp_path)
    assert not dead.exists() and live.exists()
    del con


def test_the_settings_reach_duckdb_and_a_failed_read_leaves_no_folder(tmp_path):
    # enough customers for the inputs to be usable (a run needs at least 20)
    ids = [f"c{i}" for i in range(25)]
    log = pd.DataFrame({"customer_id": ids * 2, "amount": [1.0, 2.0] * 25,
                        "date": pd.to_datetime(["2024-01-01"] * 25 + ["2024-02-01"] * 25)})
    check = validate(log, memory_limit="1GB", temp_directory=str(tmp_path))
    con = check.inputs.log.con
    assert _setting(con, "memory_limit") == "953.6 MiB"
    assert Path(_setting(con, "temp_directory")).parent == tmp_path
    del check, con
    gc.collect()
    assert _spill_folders(tmp_path) == []
    with pytest.raises(ClvInputError, match="amount") as failed:
        validate(log.assign(amount=["x"] + ["1"] * 49), temp_directory=str(tmp_path))
    del failed
    gc.collect()
    assert _spill_folders(tmp_path) == []


def test_a_memory_limit_duckdb_cannot_read_is_a_setting_error():
    for bad in ("lots", "4 apples", "-1GB"):
        with pytest.raises(ClvInputError, match="'memory_limit' setting must be a size"):
            load_settings(None, memory_limit=bad)
    assert load_settings(None, memory_limit="50%").memory_limit == "50%"


def test_duckdb_returns_the_memory_its_queries_freed():
    """The run's connection has DuckDB's allocator return freed memory to the system in the
    background (its own default keeps it: about 0.45 GB held after reading a million
    customers' log, which the run's arrays could not use; benchmarks/bench_analyze.py
    measures the peak)."""
    con = connect()
    assert _setting(con, "allocator_background_threads") is True
