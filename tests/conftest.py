"""Shared fixtures: small transaction logs written as real CSV and Parquet files."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest


def write_csv(tmp_path: Path, text: str, name: str = "tx.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def cdnow_master() -> pd.DataFrame:
    """lifetimes' shipped CDNOW master log, ids as strings with their leading zeros."""
    spec = importlib.util.find_spec("lifetimes")
    path = Path(spec.origin).parent / "datasets" / "CDNOW_master.txt"
    return pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
