"""Formula injection neutralised in text cells only (OWASP's rule for CSV injection), plain
numbers and phone numbers kept as they are for the CRM."""
import numpy as np
import pandas as pd
import pyarrow as pa

from clvtools.report.safe_text import neutralise_arrow, neutralise_formulas, neutralise_text

RISKY = ("=1+2", "=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
         "\tx", "\r=x", "+", "-", "+49 151 abc", "-0042x", "+1 (555) 123", "'=x", "''@x")
KEPT = ("-0042", "+4915112345678", "+49 151 1234 5678", "-3", "+12.5", "-1e3", "online",
        "a=b", "", "'plain", "'-0042", "4915")


def test_text_that_begins_like_a_formula_gets_a_quote():
    for risky in RISKY:
        assert neutralise_text(risky) == "'" + risky, risky
    for kept in KEPT:
        assert neutralise_text(kept) == kept, kept
    assert neutralise_text(-3.5) == -3.5 and neutralise_text(None) is None


def test_a_frame_keeps_its_numbers_dtypes_and_missing_values():
    frame = pd.DataFrame({
        "id": ["=HYPERLINK(\"http://x\")", "C1", None, np.nan],
        "net_benefit": [-12.5, 3.0, -0.01, np.nan],
        "mixed": [-1, "-1", 2, "-x"],
        "level": pd.Categorical(["@x", "y", "y", "y"]),
        "code": pd.array(["+1", "a", None, "+b"], dtype="string"),
    })
    safe = neutralise_formulas(frame)
    assert safe["id"].tolist()[:2] == ["'=HYPERLINK(\"http://x\")", "C1"]
    assert safe["id"].isna().tolist() == [False, False, True, True]
    assert safe["net_benefit"].equals(frame["net_benefit"])          # numbers untouched
    assert safe["mixed"].tolist() == [-1, "-1", 2, "'-x"]             # a text number is kept
    assert list(safe["level"].cat.categories) == ["'@x", "y"]
    assert safe["code"].dtype == frame["code"].dtype and safe["code"].tolist()[::3] == ["+1",
                                                                                       "'+b"]
    assert frame["id"][0].startswith("=")                             # the input is kept
    assert neutralise_formulas(frame.rename(columns={"id": "=id"})).columns[0] == "'=id"


def _quoted(text: str) -> bool:
    """The documented recovery rule: quotes, then a formula prefix, and no number after it."""
    core = text.lstrip("'")
    return (core[:1] in ("=", "+", "-", "@", "\t", "\r") and core[:1] != ""
            and neutralise_text(core) != core)


def test_the_csv_writers_version_follows_the_same_rule_and_counts():
    values = list(RISKY + KEPT) + [None]
    table = pa.table({
        "id": pa.array(values),
        "level": pa.array(values).dictionary_encode(),
        "amount": pa.array([-1.0] * len(values)),
        "@name": pa.array(["x"] * len(values)),
    })
    safe, changed = neutralise_arrow(table)
    expected = [neutralise_text(v) for v in values]
    assert safe.column("id").to_pylist() == expected
    assert safe.column("level").to_pylist() == expected
    assert pa.types.is_dictionary(safe.column("level").type)
    assert safe.column("amount").to_pylist() == [-1.0] * len(values)
    assert safe.column_names == ["id", "level", "amount", "'@name"]
    assert changed == 2 * len(RISKY) + 1
    # recovering the original: strip the one leading quote from a quoted cell
    recovered = [v[1:] if v is not None and v.startswith("'") and _quoted(v[1:]) else v
                 for v in expected]
    assert recovered == values
    assert neutralise_arrow(pa.table({"id": ["a", "b"]})) == (pa.table({"id": ["a", "b"]}), 0)


def _random_texts(rng: np.random.Generator, n: int) -> list:
    """Short texts from an alphabet rich in formula prefixes, quotes, digits and multi-byte
    characters; some empty, some missing."""
    alphabet = list("=+-@\t\r'0123456789 .,eEab(é€") + ["=HYPERLINK(", "+49 ", "''-"]
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.05:
            out.append(None)
        elif kind < 0.1:
            out.append("")
        else:
            out.append("".join(rng.choice(alphabet, size=rng.integers(1, 6))))
    return out


def test_the_first_byte_screen_agrees_with_the_cell_by_cell_rule():
    rng = np.random.default_rng(5)
    for trial in range(200):
        values = _random_texts(rng, int(rng.integers(1, 40)))
        if trial % 3 == 0:   # mostly harmless columns, the screen's usual case
            values = [v if v is None or neutralise_text(v) is v else "x" + v for v in values]
        kind = pa.large_string() if trial % 2 else pa.string()
        whole = pa.array(["=pad", *values, "-pad"], type=kind)
        sliced = whole.slice(1, len(values))   # an offset into shared buffers
        column = pa.chunked_array([sliced, pa.array(values[:3], type=kind)])
        cells = values + values[:3]
        expected = [neutralise_text(v) for v in cells]
        safe, changed = neutralise_arrow(pa.table({"text": column}))
        assert safe.column("text").to_pylist() == expected
        assert changed == sum(e is not v for e, v in zip(expected, cells, strict=True))
    assert neutralise_arrow(pa.table({"text": pa.array(["", None, ""])}))[1] == 0
    assert neutralise_arrow(pa.table({"text": pa.array([], type=pa.string())}))[1] == 0
