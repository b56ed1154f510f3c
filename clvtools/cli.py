"""Command line: ``clvtools analyze``, ``demo`` and ``evaluate``, over the same pipeline as the
API.

A user's mistake (bad data, a bad setting, a missing file) prints one message and exits
with status 2, never a traceback.
"""
from __future__ import annotations

import inspect
import io
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional, get_args, get_origin

import duckdb
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import api
from ._version import __version__
from .api import check_output_folder
from .config import Settings, load_settings, settings_to_toml
from .errors import ClvInputError, ConvergenceError

#: An example under each command's help (typer's epilog: one paragraph a blank line apart).
EXAMPLES = {
    None: "Examples:\n\n"
          "clvtools demo --out clvtools-demo\n"
          "clvtools analyze sales.csv --customers customers.csv --out results\n"
          "clvtools analyze --help",
    "analyze": "Example:\n\n"
               "clvtools analyze sales.csv --customers customers.csv --horizon 26 --out res\n\n"
               "then open res/report.html and res/forecast.xlsx; the contacts are in "
               "res/targets.csv",
    "demo": "Example:\n\nclvtools demo --out clvtools-demo --customers 50000 --seed 1",
    "validate": "Example:\n\n"
                "clvtools validate sales.csv --customers customers.csv --config clvtools.toml\n\n"
                "exit status 0: analyze can run on these files; 2: the error it would stop with",
    "evaluate": "Example:\n\n"
                "clvtools evaluate res transactions-since.csv --out eval\n"
                "clvtools analyze sales.csv --config eval/measured_settings.toml "
                "--evaluation eval --out res2\n\n"
                "res is the analyze run whose targets.csv was contacted",
    "config": "Example:\n\n"
              "clvtools config --example > clvtools.toml\n"
              "clvtools analyze sales.csv --config clvtools.toml --out results",
    "version": "Example:\n\nclvtools version",
}

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Customer lifetime value, churn risk and retention targeting from a transaction log.",
    epilog=EXAMPLES[None],
)
err_console = Console(stderr=True)
console = Console(log_path=False)
#: Width of the summary table in run.log.
LOG_WIDTH = 100


def _setting_options() -> list[inspect.Parameter]:
    """One ``--flag`` per setting, named as in the config file
    (``churn_after`` -> ``--churn-after``)."""
    params = []
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if annotation is bool:
            kind: Any = Optional[bool]
            decls = [f"--{name.replace('_', '-')}/--no-{name.replace('_', '-')}"]
        elif annotation in (int, Optional[int]):
            kind, decls = Optional[int], [f"--{name.replace('_', '-')}"]
        elif annotation in (float, Optional[float]) or dict in map(get_origin, get_args(
                annotation)):   # an uplift: a number on the command line, a table in TOML
            kind, decls = Optional[float], [f"--{name.replace('_', '-')}"]
        else:
            kind, decls = Optional[str], [f"--{name.replace('_', '-')}"]
        default = info.default
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(
                    None, *decls, help=f"{info.description} (default: {default})",
                    rich_help_panel="Settings"
                ),
                annotation=kind,
            )
        )
    return params


class _Transcript:
    """What a run prints: on the console as it happens, and as plain text for run.log."""

    def __init__(self, out: Console):
        self.console = out
        self.lines: list[str] = []
        self.started = time.perf_counter()

    def step(self, message: str) -> None:
        """A step starts: a timed line."""
        self.console.log(message, highlight=False, markup=False)
        self.lines.append(f"[{time.perf_counter() - self.started:7.1f} s] {message}")

    def say(self, text: str | Text) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)
        self.lines.append(text.plain if isinstance(text, Text) else text)

    def show(self, table: Table) -> None:
        self.console.print(table)
        plain = Console(file=io.StringIO(), width=LOG_WIDTH, color_system=None)
        plain.print(table)
        self.lines.append(plain.file.getvalue().rstrip())

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in "\n".join(self.lines).splitlines()) + "\n"


@contextmanager
def _progress(out: Console, first: str):
    """A spinner with the current step on a terminal; nothing when the output is a file or a
    pipe (a log, CI), where a spinner would write escape codes."""
    if out.is_terminal:
        with out.status(first) as status:
            yield lambda message: status.update(message)
    else:
        yield lambda _message: None


def _summary(results: api.Results) -> Table:
    """The headline figures."""
    table = Table(title="clvtools: the run in figures", show_header=False, title_justify="left",
                  box=box.SIMPLE, pad_edge=False)
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("figure", overflow="fold")
    for figure in results.headline():
        table.add_row(figure.label, figure.value)
    q = results.analysis.inputs.log.quality
    table.add_row("Transaction rows",
                  f"{q['rows_read']:,} read, {q['rows_used']:,} used, "
                  f"{q['rows_excluded']:,} excluded")
    return table


def _locations(folder: Path) -> list[str]:
    """Where to look first, one path a line (whole, so that it can be copied)."""
    lines = [f"Outputs: {folder}"]
    for name, label in (("report.html", "Report"), ("forecast.xlsx", "Workbook"),
                        ("targets.csv", "Contact list"), ("run.log", "This log")):
        if name in api.OUTPUT_NAMES:
            lines.append(f"{label}: {folder / name}")
    return lines


def _run(job, out: Path, epilogue=lambda _folder: (), inputs=()) -> None:
    """Run ``job(on_step) -> Results`` with a progress display, report, write into ``out``.

    Everything printed up to the writing is kept in run.log, written with the other files
    (atomically, through the manifest): the folder never exists without its log. The last
    line, which says the files are there, is the only one that cannot be in it.
    """
    check_output_folder(out, inputs)  # fail before the work, not after
    folder = out.resolve()
    run = _Transcript(console)
    with _progress(console, "Starting ...") as update:
        results = job(lambda msg: (update(msg + " ..."), run.step(msg)))
    analysis = results.analysis
    # what was changed or left out of the inputs, then what the user must hear
    for note in [*analysis.inputs.notes, *analysis.value.console_notes, *analysis.targets.notes]:
        run.say(note)
    for warning in analysis.warnings():
        run.say(Text.assemble(("Warning: ", "yellow"), warning))
    run.show(_summary(results))
    for line in [*_locations(folder), *epilogue(folder)]:
        run.say(line)
    with _progress(console, "Writing outputs ...") as update:
        results.attachments["run.log"] = run.text()
        results.write(out)
    console.print(f"[green]Done[/green] in {time.perf_counter() - run.started:.1f} s: outputs "
                  f"in {folder}", highlight=False)


def _run_engine(engine: str, transactions: str, customers, contracts, settings: Settings,
                out: Path, evaluation=None) -> None:
    """``analyze --engine spark`` or ``--engine chunked``: the run, its summary on the
    console, its files."""
    runs = {"spark": api.analyze_spark, "chunked": api.analyze_chunked}
    if engine not in runs:
        raise ClvInputError(f"--engine must be 'duckdb', 'chunked' or 'spark'. Got {engine!r} "
                            "instead.")
    if contracts is not None or evaluation is not None:
        raise ClvInputError(f"The {engine} engine reads transactions and customers only.",
                            advice="Leave out --contracts and --evaluation, or run with "
                                   "--engine duckdb.")
    check_output_folder(out)
    started = time.perf_counter()
    with _progress(console, f"Starting the {engine} engine ...") as update:
        run = runs[engine](transactions, customers=customers, config=settings,
                           on_step=lambda msg: update(msg + " ..."))
    for line in run.summary_lines():
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    folder = run.write(out)
    console.print(f"[green]Done[/green] in {time.perf_counter() - started:.1f} s: outputs in "
                  f"{folder}", highlight=False)


def analyze(
    transactions: str = typer.Argument(
        ..., help="Transaction log: a CSV or Parquet file, or a glob."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (written atomically)."),
    customers: Optional[str] = typer.Option(None, "--customers", help="Customer attributes file."),
    contracts: Optional[str] = typer.Option(
        None, "--contracts", help="Contracts file (start, end, end reason)."
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="TOML settings file; flags override it."
    ),
    evaluation: Optional[Path] = typer.Option(
        None, "--evaluation", help="Output folder of `clvtools evaluate` on the last "
                                   "campaign: report.html shows it."
    ),
    engine: str = typer.Option(
        "duckdb", "--engine", help="duckdb (this machine), chunked (this machine, customers "
                                   "in chunks within memory_limit) or spark (a Spark session: "
                                   "the installed pyspark's, or spark-submit's)."
    ),
    **flags: Any,
) -> None:
    """Analyse a transaction log and write every table into OUT."""
    settings = load_settings(config, **flags)
    if engine != "duckdb":
        _run_engine(engine, transactions, customers, contracts, settings, out, evaluation)
        return
    _run(lambda on_step: api.analyze(transactions, customers=customers, contracts=contracts,
                                     config=settings, on_step=on_step, evaluation=evaluation),
         out, inputs=[transactions, customers, contracts, evaluation])


analyze.__signature__ = inspect.Signature(
    [
        p for p in inspect.signature(analyze).parameters.values()
        if p.kind != inspect.Parameter.VAR_KEYWORD
    ]
    + _setting_options()
)
app.command("analyze", epilog=EXAMPLES["analyze"])(analyze)


def validate(
    transactions: str = typer.Argument(
        ..., help="Transaction log: a CSV or Parquet file, or a glob."
    ),
    customers: Optional[str] = typer.Option(None, "--customers", help="Customer attributes file."),
    contracts: Optional[str] = typer.Option(
        None, "--contracts", help="Contracts file (start, end, end reason)."
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="TOML settings file; flags override it."
    ),
    **flags: Any,
) -> None:
    """Check the inputs and the settings in seconds (no model is fitted): what analyze would
    read, and what it would exclude and why."""
    settings = load_settings(config, **flags)
    check = api.validate(transactions, customers=customers, contracts=contracts,
                         config=settings)
    for line in check.lines():
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print("[green]Valid[/green]: clvtools analyze can run on these inputs with these "
                  "settings.", highlight=False)


validate.__signature__ = inspect.Signature(
    [
        p for p in inspect.signature(validate).parameters.values()
        if p.kind != inspect.Parameter.VAR_KEYWORD
    ]
    + _setting_options()
)
app.command("validate", epilog=EXAMPLES["validate"])(validate)


@app.command("demo", epilog=EXAMPLES["demo"])
def demo(
    out: Path = typer.Option(..., "--out", help="Output folder (written atomically)."),
    n_customers: int = typer.Option(20_000, "--customers", min=1_000, max=1_000_000,
                                    help="Number of simulated customers."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated customer base."),
    model: str = typer.Option("bgnbd", "--model", help="True purchase process: bgnbd or pnbd."),
) -> None:
    """Run the whole analysis on a customer base that clvtools generates (known truth)."""
    if model not in api.DEMO_MODELS:
        raise ClvInputError(f"--model must be 'bgnbd' or 'pnbd'. Got {model!r} instead.")

    def job(on_step):
        on_step(f"Generating {n_customers:,} customers (seed {seed}, {model})")
        return api.demo(n_customers, seed=seed, model=model, on_step=on_step)

    def rerun(folder: Path) -> list[str]:
        inputs = folder / "demo_input"
        return [f"The generated input is in {inputs}; rerun it with: clvtools analyze "
                f"{inputs / 'transactions.csv'} --customers {inputs / 'customers.csv'} "
                "--out OUT"]

    _run(job, out, rerun)


@app.command("evaluate", epilog=EXAMPLES["evaluate"])
def evaluate(
    plan: Path = typer.Argument(..., help="Output folder of the analyze run whose plan was "
                                          "carried out (plan.parquet, plan.json)."),
    transactions: str = typer.Argument(..., help="Transactions since the plan, or the updated "
                                                 "full log: CSV or Parquet file, or a glob."),
    out: Path = typer.Option(..., "--out", help="Output folder (written atomically)."),
    end: Optional[str] = typer.Option(None, "--end", help="Last day to count (default: the "
                                                          "last date in the log)."),
) -> None:
    """Measure what a retention plan saved: treatment against control, per action and cell."""
    api.check_evaluation_folder(out, inputs=[plan, transactions])
    started = time.perf_counter()
    results = api.evaluate(plan, transactions, end=end)
    folder = results.write(out)
    summary = results.summary
    console.print(f"Window {summary['window_start']} to {summary['window_end']} "
                  f"({summary['read_out']} read-out), {summary['evaluated_customers']:,} "
                  "customers of the plan.", highlight=False)
    for _, row in results.measures[results.measures["cell"] == "all"].iterrows():
        console.print(_measured_line(row), highlight=False, markup=False, soft_wrap=True)
    for note in summary["notes"]:
        console.print(note, highlight=False, markup=False, soft_wrap=True)
    console.print(f"[green]Done[/green] in {time.perf_counter() - started:.1f} s. Outputs in "
                  f"{folder}; for the next run: clvtools analyze LOG --config "
                  f"{folder / 'measured_settings.toml'} --out DIR", highlight=False)


def _measured_line(row) -> str:
    """One action's (or the campaign's) measured figures against the plan's, in words."""
    def money(x):
        return "n/a" if x != x else f"{x:,.0f}"

    line = f"{row['action']}: {row['treated']:,} treated, {row['control']:,} control."
    if row["uplift"] == row["uplift"]:
        line += (f" Uplift {row['uplift']:.1%} (95 % {row['uplift_low']:.1%} to "
                 f"{row['uplift_high']:.1%}; assumed {row['assumed_uplift']:.1%}).")
    line += (f" Revenue saved {money(row['revenue_saved'])} (95 % "
             f"{money(row['revenue_saved_low'])} to {money(row['revenue_saved_high'])}), cost "
             f"{money(row['cost'])}, net benefit {money(row['net_benefit'])} (plan: "
             f"{money(row['predicted_net_benefit'])}). {row['conclusion']}.")
    return line


@app.command("config", epilog=EXAMPLES["config"])
def config(
    example: bool = typer.Option(False, "--example",
                                 help="Print a settings file with every key and its default."),
) -> None:
    """Settings files: ``--example`` prints one with every key, its meaning and its default."""
    if not example:
        raise ClvInputError("Say what to do: clvtools config --example > clvtools.toml")
    sys.stdout.write(settings_to_toml(Settings(), described=True))


@app.command("version", epilog=EXAMPLES["version"])
def version() -> None:
    """Print the clvtools version."""
    console.print(__version__)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``clvtools`` command; returns the exit status.

    Usage errors are click's (exit 2, with the usage line); a :class:`ClvInputError`, a
    :class:`ConvergenceError` or DuckDB running out of its ``memory_limit`` prints its message
    alone and exits 2.
    """
    try:
        app(args=argv, prog_name="clvtools", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (ClvInputError, ConvergenceError) as exc:
        message = str(exc) if isinstance(exc, ClvInputError) else _convergence_message(exc)
        err_console.print(
            "Error: " + message, highlight=False, markup=False, style="red", soft_wrap=True
        )
        return 2
    except duckdb.OutOfMemoryException as exc:   # a memory_limit too small for the data
        err_console.print(
            f"Error: DuckDB ran out of memory: {str(exc).splitlines()[0]}\nWhat to do: raise "
            "the memory_limit setting (unset, DuckDB takes 80 % of the memory), or give "
            "temp_directory a disk with free space.",
            highlight=False, markup=False, style="red", soft_wrap=True)
        return 2
    return 0


def _convergence_message(exc: ConvergenceError) -> str:
    """A model that did not converge, with advice a command-line user can follow: the API's
    checklist names constructor arguments (penalizer_coef) that are no settings."""
    what = str(exc).splitlines()[0].replace(" Try, in this order:", "")
    return (what.replace(" Try, in order:", "")
            + "\nWhat to do: try another value model (--value-model bgnbd, mbgnbd or pnbd), "
            "leave the attributes out of it (--no-value-covariates), a coarser --time-unit "
            "(week or month), or a customers file with fewer or coarser attributes; and check "
            "that the log has enough repeat buyers.")


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    run()
