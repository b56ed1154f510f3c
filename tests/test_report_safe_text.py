"""Formula injection neutralised in text cells only (OWASP's rule for CSV injection)."""
import numpy as np
import pandas as pd

from clvtools.report.safe_text import neutralise_formulas, neutralise_text


def test_text_that_begins_like_a_formula_gets_a_quote():
    for risky in ("=1+2", "+44 20 7946", "-3", "@SUM(A1)", "\tx", "\r=x"):
        assert neutralise_text(risky) == "'" + risky
    for harmless in ("online", "a=b", "", "'=already"):
        assert neutralise_text(harmless) == harmless
    assert neutralise_text(-3.5) == -3.5 and neutralise_text(None) is None


def test_a_frame_keeps_its_numbers_dtypes_and_missing_values():
    frame = pd.DataFrame({
        "id": ["=HYPERLINK(\"http://x\")", "C1", None, np.nan],
        "net_benefit": [-12.5, 3.0, -0.01, np.nan],
        "mixed": [-1, "-1", 2, "ok"],
        "level": pd.Categorical(["@x", "y", "y", "y"]),
        "code": pd.array(["+1", "a", None, "b"], dtype="string"),
    })
    safe = neutralise_formulas(frame)
    assert safe["id"].tolist()[:2] == ["'=HYPERLINK(\"http://x\")", "C1"]
    assert safe["id"].isna().tolist() == [False, False, True, True]
    assert safe["net_benefit"].equals(frame["net_benefit"])          # numbers untouched
    assert safe["mixed"].tolist() == [-1, "'-1", 2, "ok"]             # only the text cell
    assert list(safe["level"].cat.categories) == ["'@x", "y"]
    assert safe["code"].dtype == frame["code"].dtype and safe["code"][0] == "'+1"
    assert frame["id"][0].startswith("=")                             # the input is kept
    assert neutralise_formulas(frame.rename(columns={"id": "=id"})).columns[0] == "'=id"
