"""Sphinx configuration: ``pip install -e ".[test]" && sphinx-build -W docs docs/_build``.

The reference pages (settings, command line, output files) are generated from the code by the
local extension ``_ext/clvtools_reference.py``; the API pages by autosummary into ``generated/``
and ``api/`` (both ignored by git). tests/test_docs.py builds the site with warnings as errors.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the clvtools of this checkout, installed or not

project = "clvtools"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "clvtools_reference",
]
templates_path = ["_templates"]
autosummary_generate = True
autodoc_default_options = {"member-order": "bysource"}
# pydantic and typer signatures are long and say nothing a reader needs
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
html_theme = "alabaster"
html_theme_options = {"page_width": "1100px", "sidebar_width": "230px"}
html_static_path = []
# "--churn-after" must stay two hyphens, not become a dash
smartquotes = False
exclude_patterns = ["_build", "_templates"]
