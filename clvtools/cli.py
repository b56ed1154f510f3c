"""Command line: ``clvtools analyze``, ``demo`` and ``evaluate``, over the same pipeline as the
API.

A user's mistake (bad data, a bad setting, a missing file) prints one message and exits
with status 2, never a traceback.
"""
from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path
from typing import Any, Optional, get_args, get_origin

import typer
from rich.console import Console

from . import api
from ._version import __version__
from .api import check_output_folder
from .config import Settings, load_settings, settings_to_toml
from .errors import ClvInputError, ConvergenceError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Customer lifetime value, churn risk and retention targeting from a transaction log.",
)
err_console = Console(stderr=True)
console = Console(log_path=False)


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


def _run(job, out: Path) -> None:
    """Run ``job(on_step) -> Results`` with a progress display, write into ``out``, report."""
    check_output_folder(out)  # fail before the work, not after
    started = time.perf_counter()
    with console.status("Starting") as status:
        results = job(lambda msg: (status.update(msg + " ..."), console.log(msg)))
        status.update("Writing outputs ...")
        folder = results.write(out)
    # what was changed or left out of the inputs, before the summary line
    analysis = results.analysis
    for note in [*analysis.inputs.notes, *analysis.value.console_notes, *analysis.targets.notes]:
        console.print(note, highlight=False, markup=False, soft_wrap=True)
    for warning in results.analysis.warnings():
        console.print(f"[yellow]Warning:[/yellow] {warning}", highlight=False)
    q = results.analysis.inputs.log.quality
    console.print(
        f"[green]Done[/green] in {time.perf_counter() - started:.1f} s: "
        f"{q['rows_read']:,} rows read, "
        f"{q['rows_used']:,} used, {q['rows_excluded']:,} excluded, {q['customers']:,} customers. "
        f"Outputs in {folder}"
    )


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
    **flags: Any,
) -> None:
    """Analyse a transaction log and write every table into OUT."""
    settings = load_settings(config, **flags)
    _run(lambda on_step: api.analyze(transactions, customers=customers, contracts=contracts,
                                     config=settings, on_step=on_step, evaluation=evaluation),
         out)


analyze.__signature__ = inspect.Signature(
    [
        p for p in inspect.signature(analyze).parameters.values()
        if p.kind != inspect.Parameter.VAR_KEYWORD
    ]
    + _setting_options()
)
app.command("analyze")(analyze)


@app.command("demo")
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

    _run(job, out)
    inputs = out.resolve() / "demo_input"
    console.print(
        f"The generated input is in {inputs}; rerun it with: clvtools analyze "
        f"{inputs / 'transactions.csv'} --customers {inputs / 'customers.csv'} --out OUT"
    )


@app.command("evaluate")
def evaluate(
    plan: Path = typer.Argument(..., help="Output folder of the analyze run whose plan was "
                                          "carried out (plan.parquet, plan.json)."),
    transactions: str = typer.Argument(..., help="Transactions since the plan, or the updated "
                                                 "full log: CSV or Parquet file, or a glob."),
    out: Path = typer.Option(..., "--out", help="Output folder (written atomically)."),
    end: Optional[str] = typer.Option(None, "--end", help="Last day to count (default: the "
                                                          "last date in the log)."),
) -> None:
    """Measure what a retention plan saved: treatment against control, per action and cell.

    Example: clvtools evaluate run-2024-12 transactions.csv --out eval-2025-06
    """
    check_output_folder(out, marker="evaluation.json")
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


@app.command("config")
def config(
    example: bool = typer.Option(False, "--example",
                                 help="Print a settings file with every key and its default."),
) -> None:
    """Settings files: ``--example`` prints one with every key, its meaning and its default."""
    if not example:
        raise ClvInputError("Say what to do: clvtools config --example > clvtools.toml")
    sys.stdout.write(settings_to_toml(Settings(), described=True))


@app.command("version")
def version() -> None:
    """Print the clvtools version."""
    console.print(__version__)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``clvtools`` command; returns the exit status.

    Usage errors are click's (exit 2, with the usage line); a :class:`ClvInputError` or
    :class:`ConvergenceError` prints its message alone and exits 2.
    """
    try:
        app(args=argv, prog_name="clvtools", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (ClvInputError, ConvergenceError) as exc:
        err_console.print(
            "Error: " + str(exc), highlight=False, markup=False, style="red", soft_wrap=True
        )
        return 2
    return 0


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    run()
