"""report.html of ``clvtools analyze --engine chunked`` in a real headless Chromium: it loads
offline with no error and no request, has the standard page's sections in order, every figure
renders with its text inside the image, its headline figures and matrix table equal the
standard run's report on the same demo (the value model's checks included), and each part the
chunked engine does not compute is stated in one line where it would be."""
from __future__ import annotations

import pytest
from test_report_html import CHROMIUM, CHROMIUM_ARGS, assert_text_inside, record_figures

from clvtools import api
from clvtools.datasets import generate_customer_base
from clvtools.scale.chunked_report import NOT_COMPUTED, NOT_COMPUTED_LINE, chunked_sections

#: The standard page's sections; the chunked page has them all.
SECTIONS = ("summary", "data", "kpis", "models", "survival", "matrix", "targets", "forecast")
SETTINGS = {"value_model": "bgnbd", "push_capacity": 25}


@pytest.fixture(scope="module")
def runs():
    """The standard and the chunked run of one demo base (several chunks)."""
    tx = generate_customer_base(1500, seed=5).transactions
    return (api.analyze(tx, **SETTINGS),
            api.analyze_chunked(tx, chunk_rows=400, **SETTINGS))


@pytest.fixture(scope="module")
def pages(runs, tmp_path_factory):
    """Both runs' report.html loaded in Chromium, with what each page logged and requested."""
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/setup-test"
    from playwright.sync_api import sync_playwright
    standard, chunked = runs
    root = tmp_path_factory.mktemp("reports")
    files = {"standard": standard.write(root / "standard") / "report.html",
             "chunked": chunked.write(root / "chunked") / "report.html"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        loaded = {}
        for name, path in files.items():
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            events = {"console": [], "failed": [], "requests": []}
            page.on("console", lambda m, e=events: e["console"].append((m.type, m.text)))
            page.on("requestfailed", lambda r, e=events: e["failed"].append(r.url))
            page.on("request", lambda r, e=events: e["requests"].append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            loaded[name] = (page, events, path)
        yield loaded
        browser.close()


def test_the_chunked_page_loads_offline_with_every_section(pages):
    page, events, path = pages["chunked"]
    assert page.title() == "Customer value and churn report"
    assert [m for m in events["console"] if m[0] in ("error", "warning")] == []
    assert events["failed"] == []
    assert [u for u in events["requests"] if not u.startswith("data:")] == [path.as_uri()]
    ids = page.eval_on_selector_all("main > section", "s => s.map(e => e.id)")
    assert tuple(ids) == SECTIONS
    for section in SECTIONS:
        assert page.inner_text(f"#{section} > h2").strip()


def test_every_figure_renders_with_a_size_and_a_caption(pages):
    page, _, _ = pages["chunked"]
    shown = page.eval_on_selector_all(
        "figure", """fs => fs.map(f => { const i = f.querySelector('img');
            return {id: f.closest('section').id, w: i.naturalWidth, h: i.naturalHeight,
                    complete: i.complete, alt: i.alt,
                    caption: f.querySelector('figcaption').innerText}; })""")
    # KPIs, cohorts, the matrix (from counts binned in DuckDB), the forecast
    assert {f["id"] for f in shown} >= {"kpis", "matrix", "forecast"}
    # the matrix, the P(alive) map and the Lorenz curve, as on the standard page
    matrix = [f["caption"] for f in shown if f["id"] == "matrix"]
    standard = pages["standard"][0].eval_on_selector_all(
        "#matrix figure", "fs => fs.map(f => f.querySelector('figcaption').innerText)")
    assert len(matrix) == 3 and matrix == standard
    for f in shown:
        assert f["complete"] and f["w"] > 300 and f["h"] > 200, f
        assert f["alt"] and f["caption"].strip().endswith("."), f


def test_every_figure_keeps_its_text_inside_the_image(runs, monkeypatch):
    drawn = record_figures(monkeypatch)
    chunked_sections(runs[1])
    assert len(drawn) >= 4
    assert_text_inside(drawn)


def test_the_headline_and_the_matrix_equal_the_standard_report(pages):
    def read(name):
        page = pages[name][0]
        numbers = page.locator("#summary .headline .number").all_inner_texts()
        plan = page.locator("#summary > p:not(.note)").all_inner_texts()
        plan += page.locator("#summary ol li").all_inner_texts()
        matrix = page.locator("#matrix .table", has_text="Per cell and in total")
        return numbers, plan, matrix.locator("tbody").inner_text()
    chunked, standard = read("chunked"), read("standard")
    assert len(chunked[0]) == 4 and len(chunked[1]) >= 4     # the three things to do
    assert chunked == standard


def test_the_80_20_table_and_the_contact_lists_equal_the_standard_report(pages):
    def read(name):
        page = pages[name][0]
        tables = [page.locator("#matrix .table", has_text="the Gini coefficient")]
        tables += page.locator("#targets .table", has_text="The top of the").all()
        return [(t.locator("p.caption").inner_text(), t.locator("tbody").inner_text())
                for t in tables]
    chunked, standard = read("chunked"), read("standard")
    assert len(standard) >= 3 and all(body for _, body in standard)
    assert chunked == standard


def _survival_part(page) -> tuple[int, str]:
    """The survival section's figures and its medians table's text."""
    medians = page.locator("#survival .table", has_text="Median time to declared churn")
    return page.locator("#survival figure").count(), medians.locator("tbody").inner_text()


def test_the_survival_curves_and_medians_equal_the_standard_report(pages):
    """The Kaplan-Meier figure and the medians table from the landmark table's counts in
    DuckDB: as on the standard page."""
    chunked = _survival_part(pages["chunked"][0])
    assert chunked[0] == 1 and "all" in chunked[1]
    assert chunked == _survival_part(pages["standard"][0])


def _holdout_part(page) -> tuple[str, list[str]]:
    """The models section's holdout table's text and its figures' titles."""
    totals = page.locator("#models .table", has_text="Holdout totals per candidate")
    titles = page.eval_on_selector_all("#models figure img", "is => is.map(i => i.alt)")
    return totals.locator("tbody").inner_text(), [t for t in titles if "Holdout" in t]


def test_the_value_models_holdout_table_and_charts_equal_the_standard_report(pages):
    """The holdout totals (summed over chunks) and its two charts, as on the standard
    page."""
    chunked = _holdout_part(pages["chunked"][0])
    assert "bgnbd" in chunked[0] and len(chunked[1]) == 2
    assert chunked == _holdout_part(pages["standard"][0])


def test_each_part_not_computed_is_stated_where_it_would_be(pages):
    page, _, _ = pages["chunked"]
    for section, parts in NOT_COMPUTED.items():
        notes = page.locator(f"#{section} .note", has_text=NOT_COMPUTED_LINE)
        assert notes.count() == len(parts), section
        text = " ".join(notes.all_inner_texts()).lower()
        assert all(part.lower() in text for part in parts), section
    # and nowhere else: the other sections are computed in full
    assert page.locator(".note", has_text=NOT_COMPUTED_LINE).count() == sum(
        map(len, NOT_COMPUTED.values()))


def _value_checks_part(page) -> str:
    """The models section's table of the value model's checks, as text."""
    checks = page.locator("#models .table", has_text="The value model's checks")
    return checks.locator("tbody").inner_text()


def test_the_value_checks_table_equals_the_standard_report(pages):
    """The holdout's AUC, the spend-frequency correlation and the frequency fit, computed on
    the RFM table's columns: as on the standard page, and no longer stated as not
    computed."""
    page = pages["chunked"][0]
    chunked = _value_checks_part(page)
    for check in ("p_alive_auc_holdout", "spend_frequency_correlation", "frequency_fit"):
        assert check in chunked
    assert chunked == _value_checks_part(pages["standard"][0])
    assert page.locator("#models .note", has_text="checks").count() == 0
