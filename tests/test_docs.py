"""The documentation site builds with warnings as errors, and its generated pages and its
migration page say what the code has (a real Sphinx build of a copy of docs/)."""
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clvtools.config import Settings
from clvtools.report.outputs import OUTPUTS

#: The module's fixtures are built once: its tests on one worker (a module-scoped fixture is
#: otherwise built again on each worker that runs one of them)
pytestmark = pytest.mark.xdist_group("docs")

ROOT = Path(__file__).resolve().parents[1]


def _text(page: Path) -> str:
    """A built page's text: tags dropped, entities decoded, whitespace collapsed."""
    body = re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))
    return " ".join(html.unescape(body).split())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The HTML site, built from a copy of docs/ (autosummary writes its pages into the
    source folder; a copy keeps the checkout clean and stale pages out)."""
    work = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "docs", work / "docs",
                    ignore=shutil.ignore_patterns("_build", "generated", "api", "__pycache__"))
    shutil.copy(ROOT / "README.md", work / "README.md")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    built = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-j", "1", "-q", "-b", "html",
         "-d", str(work / "doctrees"), str(work / "docs"), str(work / "html")],
        capture_output=True, text=True, env=env, cwd=work)
    assert built.returncode == 0, f"sphinx-build -W failed:\n{built.stderr}\n{built.stdout}"
    return work / "html"


def test_settings_reference_lists_every_setting_with_its_description(site):
    text = _text(site / "reference" / "settings.html")
    for name, info in Settings.model_fields.items():
        assert f"--{name.replace('_', '-')}" in text, name
        assert " ".join(info.description.split()) in text, name


def test_outputs_reference_lists_the_manifest(site):
    text = _text(site / "reference" / "outputs.html")
    for output in OUTPUTS:
        assert output.name in text and output.meaning in text, output.name


def test_cli_reference_lists_every_command(site):
    import typer

    from clvtools.cli import app

    text = _text(site / "reference" / "cli.html")
    for name, command in typer.main.get_command(app).commands.items():
        assert f"clvtools {name} [OPTIONS]" in text, name
        assert " ".join(command.help.replace("``", "").split()[:4]) in text, name
    assert "--customers" in text and "see Settings" in text


def test_getting_started_shows_the_readme_set_up_commands(site):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [line for block in re.findall(r"```[^\n]*\n(.*?)```", setup, re.S)
                for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    text = _text(site / "getting_started.html")
    for command in commands:
        assert command in text


def test_api_reference_documents_the_public_api(site):
    for page, member in [("clvtools.api.analyze", "overrides"),
                         ("clvtools.api.Results", "write"),
                         ("clvtools.btyd.BetaGeoFitter", "conditional_probability_alive"),
                         ("clvtools.survival.ChurnModel", "churn_probability"),
                         ("clvtools.targeting.allocate", "capacity"),
                         ("clvtools.forecast.monthly_forecast", "_lo80")]:
        assert member in _text(site / "generated" / f"{page}.html"), page


def _names(rst: str, start: str) -> list[str]:
    """The ``names`` of the paragraph of migration.rst that starts with ``start``."""
    paragraph = rst.split(start, 1)[1].split("\n\n", 1)[0]
    return re.findall(r"``([A-Za-z_]+)``", paragraph)


def test_migration_page_names_exist():
    pytest.importorskip("lifetimes")
    import lifetimes
    from lifelines.datasets import load_rossi

    import clvtools.btyd
    from clvtools.survival import ChurnModel

    rst = (ROOT / "docs" / "migration.rst").read_text(encoding="utf-8")
    kept = _names(rst, "Every public method of lifetimes' fitters")
    purchase_models = ["BetaGeoFitter", "ModifiedBetaGeoFitter", "ParetoNBDFitter",
                       "BetaGeoBetaBinomFitter"]
    for model in [*purchase_models, "GammaGammaFitter"]:
        theirs = {m for m in dir(getattr(lifetimes, model))
                  if not m.startswith("_") and callable(getattr(getattr(lifetimes, model), m))}
        ours = getattr(clvtools.btyd, model)
        missing = theirs - set(kept) - {"fit", "save_model", "load_model", "summary"}
        assert not missing, f"lifetimes' {model} methods not on the page: {missing}"
        assert all(hasattr(ours, m) for m in theirs), model
    for name in kept:   # a method, or the name of the fitter it belongs to
        assert hasattr(clvtools.btyd, name) or any(hasattr(getattr(clvtools.btyd, m), name)
                   for m in [*purchase_models, "GammaGammaFitter"]), name
    fitted = ChurnModel(duration_col="week", event_col="arrest").fit(load_rossi())
    lifelines_names = _names(rst, "**Names kept:**")
    assert len(lifelines_names) >= 15
    for name in lifelines_names:
        assert hasattr(fitted, name), name
    for name in _names(rst, "**What is added:** ``churn_probability"):
        assert hasattr(fitted, name), name
