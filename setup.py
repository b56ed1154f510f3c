"""Install clvtools: ``pip install -e .`` (add ``[test]`` for the test suite)."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
version = {}
exec((ROOT / "clvtools" / "_version.py").read_text(), version)

setup(
    name="clvtools",
    version=version["__version__"],
    description=(
        "Customer lifetime value and churn: BTYD models, Cox churn hazards, "
        "push/pull retention targeting and revenue-at-risk forecasts from a transaction log."
    ),
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["clvtools", "clvtools.*"]),
    include_package_data=True,
    package_data={"clvtools.schemas": ["*.json"],
                  # report.html's page template and style sheet
                  "clvtools.report": ["templates/*"]},
    install_requires=[
        "numpy>=1.26",
        "scipy>=1.11",
        # lifelines 0.30 does not support pandas 3
        "pandas>=2.2,<3",
        "pyarrow>=14",
        "matplotlib>=3.8",
        "lifelines>=0.30,<0.31",
        "duckdb>=1.1",
        "jinja2>=3.1",
        "xlsxwriter>=3.1",
        "typer>=0.12",
        "rich>=13",
        "pydantic>=2.5",
        "jsonschema>=4.20",
        # IPCW concordance, time-dependent AUC and Brier score of the churn model
        "scikit-survival>=0.23",
        # single-threaded BLAS while fitting BTYD models (faster on collapsed data)
        "threadpoolctl>=3",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",
            # the reference implementation that tests and benchmarks compare against
            "lifetimes==0.11.3",
            # the reference of the profit measures (MP, EMPC) of the targeting evaluation
            "empulse>=0.13",
            # high-precision references for special functions in the tests
            "mpmath>=1.3",
            "openpyxl>=3.1",
            # the notebooks run as tests
            "nbmake>=1.5",
            "ipykernel>=6",
            # the style and import rules run as a test (tests/test_style.py)
            "ruff>=0.6",
            # the documentation site builds as a test (tests/test_docs.py)
            "sphinx>=7",
            "numpydoc>=1.6",
            # drives Debian's chromium (scripts/setup-test) to test report.html; never
            # `playwright install`, which downloads a browser of its own
            "playwright>=1.40",
            # the Spark engine's tests run a real Spark in local mode (Java 17 on the machine)
            "pyspark>=3.5",
        ],
        "spark": ["pyspark>=3.5"],
        "docs": ["sphinx>=7", "numpydoc>=1.6"],
    },
    entry_points={"console_scripts": ["clvtools=clvtools.cli:run"]},
)
