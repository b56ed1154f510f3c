"""Keyed pseudonyms: stable under one key, different under another, and only for the ids and
the free text from the data."""
import pandas as pd
import pytest

from clvtools.errors import ClvInputError
from clvtools.report.pseudonymise import (
    KEY_VARIABLE,
    identifying_columns,
    pseudonym_key,
    pseudonymise_frame,
)

KEY, OTHER = b"k" * 32, b"o" * 32


def test_pseudonyms_are_stable_per_key_and_keep_joins():
    frame = pd.DataFrame({"customer_id": ["C1", "C2", "C1", None], "note": ["x", "y", "x", "z"]})
    one = pseudonymise_frame(frame, ["customer_id", "note"], KEY)
    assert one["customer_id"][0] == one["customer_id"][2] != one["customer_id"][1]
    assert one["customer_id"][0].startswith("id-") and len(one["customer_id"][0]) == 19
    assert one["note"][0].startswith("tx-") and one["customer_id"].isna()[3]
    assert one.equals(pseudonymise_frame(frame, ["customer_id", "note"], KEY))
    other = pseudonymise_frame(frame, ["customer_id"], OTHER)
    assert not set(other["customer_id"].dropna()) & set(one["customer_id"].dropna())
    assert other["note"].equals(frame["note"])                  # only the columns asked for
    # an id is hashed as text: 42 in one table and "42" in another get one pseudonym
    ints = pseudonymise_frame(pd.DataFrame({"customer_id": [42]}), ["customer_id"], KEY)
    text = pseudonymise_frame(pd.DataFrame({"customer_id": ["42"]}), ["customer_id"], KEY)
    assert ints.equals(text)


def test_free_text_is_told_from_segments_on_the_whole_base():
    base = pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(100)],
        "channel": ["online"] * 60 + ["store"] * 35 + ["(other)"] * 5,
        "comment": [f"called on day {i}" for i in range(100)],
        "action": ["push"] * 100,
        "spend": range(100),
    })
    listed = base.head(10)       # in the list alone every channel would look rare
    assert identifying_columns(listed, population=base) == ["customer_id", "comment"]
    assert identifying_columns(listed) == ["customer_id", "channel", "comment"]


def test_the_key_comes_from_the_environment_and_must_be_long():
    assert pseudonym_key({KEY_VARIABLE: "s" * 32}) == b"s" * 32
    with pytest.raises(ClvInputError, match="is not set"):
        pseudonym_key({})
    with pytest.raises(ClvInputError, match="at least 32"):
        pseudonym_key({KEY_VARIABLE: "short"})
