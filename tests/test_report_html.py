"""report.html in a real headless Chromium (Debian's, through playwright): it loads from a
file:// URL with no console error, no failed request and no request at all beyond the file
itself; every figure renders; every section is there; text from the data is escaped; it
prints to A4; and a full-page screenshot is taken.

The run is the demo's customer base (2,000 customers) with hostile text in it: every customer
id carries ``&<>"``, one level of an attribute is a script tag and an attribute column's name
is markup, so that the escaping is checked on every table and chart that shows them.
``scripts/setup-test`` installs Chromium where it is missing.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from clvtools.api import analyze
from clvtools.config import Settings
from clvtools.datasets import generate_customer_base
from clvtools.report import figures
from clvtools.report.figures import png_bytes
from clvtools.report.html import render_report
from clvtools.report.sections import campaign
from clvtools.report.sections.summary import churn_trend

#: The module's fixtures are built once: its tests on one worker (a module-scoped fixture is
#: otherwise built again on each worker that runs one of them)
pytestmark = pytest.mark.xdist_group("report_html")

CHROMIUM = Path("/usr/bin/chromium")
#: The closed network refuses Chromium's own background connections: switch them off.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
HOSTILE_VALUE = "<script>alert(1)</script>"
HOSTILE_ID_TAIL = '&<>"'
HOSTILE_COLUMN = 'plan <b>"&'
SECTIONS = ("summary", "data", "kpis", "models", "survival", "matrix", "targets", "forecast")


@pytest.fixture(scope="module")
def analysed():
    """The analysis of the demo's base with hostile ids, attribute values and column name."""
    base = generate_customer_base(2000, seed=3, start="2022-01-01",
                                  observation_end="2024-12-31")
    ids = {c: f"{c}{HOSTILE_ID_TAIL}" for c in base.customers["customer_id"]}
    customers = (base.customers.drop(columns="acquisition_date")
                 .assign(customer_id=lambda d: d["customer_id"].map(ids),
                         channel=lambda d: d["channel"].replace({"referral": HOSTILE_VALUE}))
                 .rename(columns={"plan": HOSTILE_COLUMN}))
    transactions = base.transactions.assign(
        customer_id=base.transactions["customer_id"].map(ids))
    return analyze(transactions, customers=customers, config=Settings(seed=3))


@pytest.fixture(scope="module")
def written(analysed, tmp_path_factory) -> Path:
    """The report of :func:`analysed`."""
    return analysed.write(tmp_path_factory.mktemp("report") / "out") / "report.html"


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/setup-test"
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def loaded(browser, written):
    """The page loaded once, with everything it logged and requested."""
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    events = {"console": [], "errors": [], "failed": [], "requests": []}
    page.on("console", lambda m: events["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: events["errors"].append(str(e)))
    page.on("requestfailed", lambda r: events["failed"].append(r.url))
    page.on("request", lambda r: events["requests"].append(r.url))
    page.goto(written.as_uri(), wait_until="load")
    yield page, events
    page.close()


def test_the_page_loads_offline_with_no_error_and_no_request(loaded, written):
    page, events = loaded
    assert page.title() == "Customer value and churn report"
    assert [m for m in events["console"] if m[0] in ("error", "warning")] == []
    assert events["errors"] == [] and events["failed"] == []
    # the file itself and nothing else: figures are data URIs, CSS inline, no font or script
    assert [u for u in events["requests"] if not u.startswith("data:")] == [written.as_uri()]


def test_every_section_is_there_with_its_title(loaded):
    page, _ = loaded
    ids = page.eval_on_selector_all("main > section", "s => s.map(e => e.id)")
    assert tuple(ids) == SECTIONS
    for section in SECTIONS:
        assert page.inner_text(f"#{section} > h2").strip()
        assert page.locator(f"nav a[href='#{section}']").count() == 1
    assert page.locator("#summary .headline .number").count() == 4
    assert page.locator("#summary ol li").count() == 3


def test_every_figure_renders_with_a_size_and_a_caption(loaded):
    page, _ = loaded
    figures = page.eval_on_selector_all(
        "figure", """fs => fs.map(f => { const i = f.querySelector('img');
            return {w: i.naturalWidth, h: i.naturalHeight, complete: i.complete,
                    shown: i.getBoundingClientRect().width, alt: i.alt,
                    caption: f.querySelector('figcaption').innerText}; })""")
    # KPIs, cohorts, two holdout plots, forest, calibration, survival, matrix, P(alive),
    # Lorenz, sensitivity, profit curve, forecast
    assert len(figures) >= 13
    for f in figures:
        assert f["complete"] and f["w"] > 300 and f["h"] > 200 and f["shown"] > 300, f
        assert f["alt"] and f["caption"].strip().endswith("."), f


def record_figures(monkeypatch) -> list:
    """The figures drawn from now on (each still rendered to PNG), in order."""
    drawn = []

    def keep(figure):
        png = png_bytes(figure)
        drawn.append(figure)
        return png
    monkeypatch.setattr(figures, "png_bytes", keep)
    return drawn


def assert_text_inside(drawn: list) -> None:
    """Every text drawn on each figure lies inside its image (to a pixel)."""
    one_pixel = 1 / figures.DPI
    for figure in drawn:
        box = figure.get_tightbbox(figure.canvas.get_renderer())   # inches
        width, height = figure.get_size_inches()
        title = figure.get_suptitle()
        assert box.x0 >= -one_pixel and box.y0 >= -one_pixel, title
        assert box.x1 <= width + one_pixel and box.y1 <= height + one_pixel, title


def test_every_figure_keeps_its_text_inside_the_image(analysed, monkeypatch):
    """The figures are laid out once and then fixed (figures.lay_out): every title, axis
    label, tick label, legend and colorbar label drawn lies inside the image, long labels
    from the data included (the attribute level is a script tag)."""
    drawn = record_figures(monkeypatch)
    render_report(analysed.analysis)
    assert len(drawn) >= 13
    assert_text_inside(drawn)
    for figure in drawn:
        box = figure.get_tightbbox(figure.canvas.get_renderer())   # inches
        width, height = figure.get_size_inches()
        title = figure.get_suptitle()
        # laid out, not merely shrunk: the text reaches two of the image's margins (a
        # square plot, such as the calibration's, leaves room at the sides)
        assert box.width > 0.9 * width or box.height > 0.9 * height, title


def test_text_from_the_data_is_escaped_not_run(loaded, written):
    page, _ = loaded
    html = written.read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<b>" not in html
    assert page.locator("script, b").count() == 0
    text = page.inner_text("body")
    # shown as text, where the data puts them: attribute levels, column names and ids
    assert HOSTILE_VALUE in text and HOSTILE_COLUMN in text
    push_list = page.locator("#targets .table", has_text="The top of the push")
    first_push = push_list.locator("tbody tr:first-child td:first-child").inner_text()
    assert first_push.endswith(HOSTILE_ID_TAIL) and first_push.startswith("C")
    headers = push_list.locator("th").all_inner_texts()
    assert HOSTILE_COLUMN in headers


def test_it_prints_to_a4_and_a_full_page_screenshot_is_taken(loaded, tmp_path):
    page, _ = loaded
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 100_000
    page.emulate_media(media="print")
    try:
        assert not page.locator("nav").is_visible()   # the print CSS drops the navigation
        pdf = page.pdf(format="A4")
    finally:
        page.emulate_media(media="screen")
    # each main section starts a page of its own
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) >= len(SECTIONS)


def test_the_campaign_evaluation_hook_renders_a_section_only_when_given():
    settings = Settings()
    assert campaign.section(None, settings) is None
    evaluation = pd.DataFrame({"action": ["push", "pull"], "cell": ["protect", HOSTILE_VALUE],
                               "predicted_uplift": [0.2, 0.05], "measured_uplift": [0.12, 0.07],
                               "measured_uplift_lo95": [0.02, -0.01],
                               "measured_uplift_hi95": [0.22, 0.15]})
    section = campaign.section(evaluation, settings)
    kinds = [b.kind for b in section.blocks]
    assert section.id == "campaign" and "chart" in kinds and "table" in kinds
    table = next(b for b in section.blocks if b.kind == "table")
    assert [HOSTILE_VALUE, "5.0 %"] == [table.rows[1][1], table.rows[1][2]]


@pytest.mark.parametrize(("rates", "word"), [
    ([0.10, 0.10, 0.10, 0.15, 0.15, 0.15], "rising"),
    ([0.10, 0.10, 0.10, 0.06, 0.06, 0.06], "falling"),
    ([0.10, 0.10, 0.10, 0.105, 0.10, 0.095], "stable"),
])
def test_the_summary_reads_the_churn_trend_from_complete_periods(rates, word):
    # the incomplete last period (a churn rate of 0.9) is neither the rate nor in the trend
    kpis = pd.DataFrame({"label": [f"2024-{m:02d}" for m in range(1, 8)],
                         "churn_rate": [*rates, 0.9], "complete": [True] * 6 + [False]})
    rate, label, trend = churn_trend(kpis, "month")
    assert (rate, label) == (rates[-1], "2024-06")
    assert trend.startswith(f"{word}: ") and "a month" in trend
