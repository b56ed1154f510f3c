"""The automatic choice of the purchase model (``value_model = "auto"``).

The candidates are BG/NBD, MBG/NBD and Pareto/NBD, compared like with like:

* without attributes in the value model, all three, without covariates;
* with attributes, BG/NBD and Pareto/NBD, both with the attributes on purchase and dropout.
  MBG/NBD has no covariate version; fitting it without them would compare a model that does
  not see the segments with two that do, so it is left out of the comparison (and said so).

Each candidate is fitted on the holdout's calibration window and scored by
:func:`clvtools.pipeline.holdout.holdout_error` (expected versus actual holdout purchases per
calibration-frequency bin and per attribute segment); the lowest error wins. Where the history
leaves no room for a holdout, the candidates are fitted on the whole history and the lowest
BIC wins (a likelihood criterion: less direct than the holdout, and said so).

Above :data:`SAMPLE_ABOVE` customers the candidates are compared on a stratified sample of
that many (strata: calibration frequency 0..9, 10+, crossed with the attribute segments;
proportional allocation, seeded), which keeps the comparison's cost bounded; the chosen model
is then fitted on every customer, so that the run's figures never rest on the sample.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ClvInputError, ConvergenceError
from . import _threads
from ._threads import alongside_thread
from .holdout import FREQUENCY_BINS, CalibrationWindow, evaluate_candidate
from .value_models import (
    COVARIATE_MODELS,
    ValueModels,
    expected_spend,
    fit_purchase_model,
    fit_spend_model,
    fit_value_models,
    rows_of,
)

__all__ = ["AUTO", "CANDIDATES", "SAMPLE_ABOVE", "ValueChoice", "candidate_models",
           "choose_by_bic", "choose_on_holdout", "holdout_tables", "stratified_positions",
           "stratified_sample"]

AUTO = "auto"
#: Every purchase model the automatic choice may take, in the order of the tables.
CANDIDATES = ("bgnbd", "mbgnbd", "pnbd")
#: Customers above which the candidates are compared on a stratified sample of this size.
#: On the 1M benchmark base (3 seeds, with and without three attributes) 50,000 made the
#: same choice as 200,000 with the same wide margins (holdout error of the chosen BG/NBD
#: 0.03-0.08 against 0.15-0.29 for the others); the covariate Pareto/NBD's fit, the costliest
#: candidate, took 7 s of CPU there against 16 s.
SAMPLE_ABOVE = 50_000


@dataclass
class ValueChoice:
    """How the purchase model was chosen (models/value.json's ``selection``).

    Attributes
    ----------
    setting : str
        The ``value_model`` setting (``auto`` or a model).
    chosen : str
        The model fitted.
    criterion : str
        ``holdout_error``, ``BIC`` or ``setting`` (an explicit ``value_model``).
    candidates : list of dict
        Per candidate: ``model``, ``covariates`` (bool) and its figures (holdout error,
        AUC, ... or BIC).
    compared_on : int
        Customers the candidates were compared on (a sample above :data:`SAMPLE_ABOVE`).
    customers : int
        Customers of the comparison's population (the window or the whole history).
    notes : list of str
        Why the candidates are what they are.
    """

    setting: str
    chosen: str
    criterion: str
    candidates: list[dict] = field(default_factory=list)
    compared_on: int = 0
    customers: int = 0
    notes: list[str] = field(default_factory=list)

    @classmethod
    def pick(cls, setting: str, figures: dict[str, dict], criterion: str, *,
             covariates: bool, compared_on: int, customers: int,
             notes: list[str]) -> ValueChoice:
        """The candidate with the lowest ``criterion`` (``holdout_error`` or ``BIC``); a
        candidate whose fit failed has NaN and is never chosen."""
        scores = {m: f.get(criterion, np.nan) for m, f in figures.items()}
        finite = {m: v for m, v in scores.items() if np.isfinite(v)}
        if not finite:
            raise ClvInputError("No value model could be fitted: "
                                + "; ".join(f.get("error", "") for f in figures.values()))
        chosen = min(finite, key=finite.get)
        rows = [{"model": m, "covariates": covariates and m in COVARIATE_MODELS, **f}
                for m, f in figures.items()]
        return cls(setting, chosen, criterion, rows, compared_on, customers, list(notes))

    @property
    def ranking(self) -> list[str]:
        """The candidates that were fitted, best first by the criterion."""
        key = "holdout_error" if self.criterion == "setting" else self.criterion
        scored = [(c.get(key, np.nan), c["model"]) for c in self.candidates]
        return [m for v, m in sorted(scored) if np.isfinite(v)] or [self.chosen]

    @property
    def note(self) -> str:
        """One line for the console and data_quality.json."""
        if self.criterion == "setting":
            return f"Value model {self.chosen}, as set (value_model = {self.setting!r})."
        values = ", ".join(
            f"{c['model']} {c.get(self.criterion, float('nan')):.4g}" for c in self.candidates)
        why = ("lowest holdout error (expected vs actual holdout purchases per calibration "
               "frequency" + (" and attribute segment" if any(
                   "error_by_segment" in c for c in self.candidates) else "")
               + ", per customer)" if self.criterion == "holdout_error"
               else "lowest BIC (no room for a holdout in the history)")
        sample = (f" on a stratified sample of {self.compared_on:,} customers"
                  if self.compared_on < self.customers else "")
        return (f"Value model {self.chosen}, chosen automatically by the {why}{sample}: "
                f"{values}.")

    def as_dict(self) -> dict:
        """JSON-ready: setting, chosen, criterion, compared_on, candidates, notes."""
        def clean(v):
            return None if isinstance(v, float) and not np.isfinite(v) else v
        return {"setting": self.setting, "chosen": self.chosen, "criterion": self.criterion,
                "reason": self.note, "compared_on": self.compared_on,
                "candidates": [{k: clean(v) for k, v in c.items()} for c in self.candidates],
                "notes": list(self.notes)}


def _failed(exc: Exception, criterion: str) -> dict:
    """A candidate that did not converge: its error, and no score (never chosen)."""
    return {"error": str(exc).splitlines()[0], criterion: np.nan}


def _comparison_rows(index: pd.Index, frequency: np.ndarray, segments: pd.DataFrame | None,
                     n_candidates: int, seed: int) -> np.ndarray | None:
    """Positions in ``index`` of its stratified sample when several candidates meet many
    customers, else None (all of them). Positions, not labels: the window and the RFM take
    them by position, without looking a million text ids up."""
    if n_candidates < 2 or len(index) <= SAMPLE_ABOVE:
        return None
    strata = pd.DataFrame({"frequency": np.minimum(frequency, FREQUENCY_BINS)}, index=index)
    if segments is not None:
        strata = strata.join(rows_of(segments, index))
    return stratified_positions(strata, SAMPLE_ABOVE, seed)


def choose_on_holdout(window: CalibrationWindow, setting: str,
                      covariates: pd.DataFrame | None, *, horizon: float, unit_days: float,
                      log, timeline, seed: int = 0, alongside: Callable | None = None
                      ) -> tuple[ValueChoice, dict, pd.DataFrame, object]:
    """Fit the candidates on the calibration window, choose by holdout error.

    Parameters
    ----------
    alongside : callable, optional
        ``alongside(choice)``, run once the choice is made, in a second thread while the
        chosen model is refitted on every customer of the window (the value step fits it on
        the whole history there: the two fits are independent, and numpy and scipy release
        the interpreter's lock in their array loops, so they share the machine's cores).
        On a sample, it starts in the thread of the last candidate as soon as that one is
        fitted, and the window's refit of the best other candidate may start before the
        choice (:func:`_overlapped`). It may change ``choice.chosen`` (a model that does
        not converge on the whole history); the window's refit is that of the holdout's
        choice either way.

    Returns
    -------
    (ValueChoice, dict, pandas.DataFrame, object)
        The choice; per candidate fitted on the whole window, its models and holdout tables
        (``holdout_by_frequency``, ``holdout_by_month``, ``holdout_by_segment`` with
        attributes); the summary, one row per candidate (on a sample, ``basis`` says so and
        the chosen model, refitted on every customer of the window, has a second row);
        what ``alongside`` returned (None without it). :func:`holdout_tables` gives the
        files of the model finally used.
    """
    candidates, notes = candidate_models(setting, covariates)
    rows = _comparison_rows(window.cal.index, window.cal["frequency_cal"].to_numpy(),
                            window.segments, len(candidates), seed)
    compare = window if rows is None else window.take(rows)
    spend = fit_spend_model(compare.rfm, None, [])  # shared: it does not depend on the model
    spend_per_purchase = expected_spend(spend, compare.rfm)
    full = compare is window

    def candidate(model):  # its holdout figures, and its models and tables (None if failed)
        try:
            purchases, fit_notes = fit_purchase_model(compare.rfm, model, covariates)
        except ConvergenceError as exc:
            if len(candidates) == 1:
                raise
            return _failed(exc, "holdout_error"), None
        models = ValueModels(purchases, spend.spend, fit_notes + spend.notes,
                             spend.observed_spend)
        row, tables = evaluate_candidate(
            models, compare, horizon=horizon, unit_days=unit_days,
            expected_spend=spend_per_purchase, log=log if full else None,
            timeline=timeline if full else None)
        return row, (models, tables)

    def choose(results):  # the choice from every candidate's figures
        figures = {m: results[m][0] for m in candidates}
        choice = ValueChoice.pick(setting, figures, "holdout_error",
                                  covariates=covariates is not None,
                                  compared_on=len(compare.cal), customers=len(window.cal),
                                  notes=notes)
        choice.criterion = "holdout_error" if len(candidates) > 1 else "setting"
        return choice

    def on_window(chosen):  # the run's holdout files rest on every customer of the window
        models = fit_value_models(window.rfm, chosen, covariates)
        return models, evaluate_candidate(
            models, window, horizon=horizon, unit_days=unit_days,
            expected_spend=expected_spend(models, window.rfm), log=log, timeline=timeline)

    if not full and len(candidates) > 1 and _threads.OVERLAP:
        results, choice, chosen, refit, beside = _overlapped(candidates, candidate, choose,
                                                             on_window, alongside)
    else:
        # every customer of a small window: the candidates in turn; or, with the overlap
        # off, in turn and then the refit on the window and ``alongside``, one after the other
        results = {m: candidate(m) for m in candidates}
        choice = choose(results)
        chosen = choice.chosen  # read before ``alongside`` may change it
        with alongside_thread(alongside, choice) as beside:
            refit = None if full else on_window(chosen)
    figures = {m: results[m][0] for m in candidates}
    fitted = {m: results[m][1] for m in candidates if results[m][1] is not None}
    basis = "all customers" if full else "stratified sample"
    summary = [{"model": m, "basis": basis, **f} for m, f in figures.items()]
    if refit is not None:
        models, (row, tables) = refit
        fitted = {chosen: (models, tables)}
        summary.append({"model": chosen, "basis": "all customers", **row})
    head = {"calibration_end": timeline.holdout_start, "observation_end": log.observation_end}
    return choice, fitted, pd.DataFrame([{**head, **r} for r in summary]), beside.result()


def _overlapped(candidates, candidate, choose, on_window, alongside):
    """The candidates on a sample, the chosen one's refit on the window and ``alongside``,
    over two threads (what :func:`choose_on_holdout` computes in turn otherwise).

    The last candidate (Pareto/NBD, the costliest fit) runs in a second thread, which then
    makes the choice and runs ``alongside(choice)`` (the whole history's fit); meanwhile this
    thread fits the others and, while the last one is still fitting, refits the best of them
    on the window ahead of the choice, which then usually only confirms it (the same fit as
    after the choice, so the same figures; the refit is repeated when another model wins).
    At a million customers with attributes the Pareto/NBD's fit on the sample took several
    times the BG/NBD's, and one core waited for it.

    Returns
    -------
    (dict, ValueChoice, str, tuple, Future)
        Per candidate its :func:`candidate` result; the choice; the model chosen by the
        holdout (``alongside`` may change ``choice.chosen`` afterwards); the chosen model's
        refit on the window and its :func:`evaluate_candidate` figures; ``alongside``'s
        future.
    """
    last = candidates[-1]
    firsts: Future = Future()  # this thread's candidates, for the other thread's choice
    chosen_by: Future = Future()  # (choice, chosen), set by the other thread

    def last_then_alongside():
        try:
            result = candidate(last)
            results = {**firsts.result(), last: result}
            choice = choose(results)
            chosen_by.set_result((results, choice, choice.chosen))
        except BaseException as exc:
            if not chosen_by.done():
                chosen_by.set_exception(exc)
            raise
        return None if alongside is None else alongside(choice)

    with alongside_thread(last_then_alongside) as beside:
        try:
            mine = {m: candidate(m) for m in candidates[:-1]}
        except BaseException as exc:
            firsts.set_exception(exc)
            raise
        firsts.set_result(mine)
        ahead = None
        scores = {m: r[0].get("holdout_error", np.nan) for m, r in mine.items()}
        finite = {m: v for m, v in scores.items() if np.isfinite(v)}
        if finite and not chosen_by.done():
            leader = min(finite, key=finite.get)
            try:
                ahead = leader, on_window(leader)
            except ConvergenceError:
                ahead = None  # refitted (and the error raised) below if it is chosen
        results, choice, chosen = chosen_by.result()
        refit = ahead[1] if ahead is not None and ahead[0] == chosen else on_window(chosen)
    return results, choice, chosen, refit, beside


def holdout_tables(choice: ValueChoice, fitted: dict, summary: pd.DataFrame
                   ) -> tuple[ValueModels, dict[str, pd.DataFrame]]:
    """The holdout model and files of the model finally chosen (``choice.chosen``), with
    ``holdout_summary`` marking it in its ``chosen`` column."""
    models, tables = fitted.get(choice.chosen, (None, {}))
    summary = summary.assign(chosen=summary["model"] == choice.chosen)
    columns = ["calibration_end", "observation_end", "model", "chosen", "basis"]
    summary = summary[columns + [c for c in summary.columns if c not in columns]]
    return models, {**tables, "holdout_summary": summary}


def choose_by_bic(rfm: pd.DataFrame, setting: str, covariates: pd.DataFrame | None,
                  segments: pd.DataFrame | None = None, *, seed: int = 0
                  ) -> tuple[ValueChoice, ValueModels]:
    """Without a holdout: fit the candidates on the whole history and keep the lowest BIC
    (on a stratified sample above :data:`SAMPLE_ABOVE` customers, then the chosen model is
    fitted on all). Returns the choice and the chosen model fitted on every customer."""
    candidates, notes = candidate_models(setting, covariates)
    if len(candidates) == 1:
        models = fit_value_models(rfm, setting, covariates)
        return ValueChoice(setting, setting, "setting", customers=len(rfm),
                           compared_on=len(rfm)), models
    rows = _comparison_rows(rfm.index, rfm["frequency"].to_numpy(), segments, len(candidates),
                            seed)
    compare = rfm if rows is None else rfm.iloc[rows]
    figures, fitted = {}, {}
    for model in candidates:
        try:
            purchases, fit_notes = fit_purchase_model(compare, model, covariates)
        except ConvergenceError as exc:
            figures[model] = _failed(exc, "BIC")
            continue
        fitted[model] = (purchases, fit_notes)
        fitter = getattr(purchases, "model", purchases)
        figures[model] = {"customers": len(compare), "log_likelihood": fitter.log_likelihood_,
                          "parameters": len(fitter.params_), "BIC": fitter.BIC_}
    choice = ValueChoice.pick(setting, figures, "BIC", covariates=covariates is not None,
                              compared_on=len(compare), customers=len(rfm), notes=notes)
    if len(compare) == len(rfm):
        return choice, fit_spend_model(rfm, *fitted[choice.chosen])
    return choice, fit_value_models(rfm, choice.chosen, covariates)


def candidate_models(value_model: str, covariates: pd.DataFrame | None
                     ) -> tuple[tuple[str, ...], list[str]]:
    """The models to compare for the setting, and why (see the module docstring)."""
    if value_model != AUTO:
        return (value_model,), []
    if covariates is not None and covariates.shape[1]:
        return ("bgnbd", "pnbd"), [
            "MBG/NBD has no covariate version: with attributes in the value model, BG/NBD and "
            "Pareto/NBD are compared, both with the attributes."]
    return CANDIDATES, []


def stratified_sample(index: pd.Index, strata: pd.DataFrame, size: int,
                      seed: int) -> pd.Index:
    """About ``size`` customers of ``index``, drawn within each stratum (the rows of
    ``strata``, aligned with ``index``) in proportion to its share (seeded)."""
    if len(index) <= size:
        return index
    return index[stratified_positions(strata, size, seed)]


def stratified_positions(strata: pd.DataFrame, size: int, seed: int) -> np.ndarray:
    """The positions (sorted, shape (about ``size``,)) of :func:`stratified_sample`'s
    customers among the rows of ``strata``; all of them when there are ``size`` or fewer."""
    if len(strata) <= size:
        return np.arange(len(strata))
    key = _stratum_codes(strata)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(strata))
    # a random permutation, then the first share of each stratum in that order (on a
    # positional index: the customers' labels are not needed, and carrying a million text
    # ids through the shuffle cost more than the draw)
    shuffled = pd.Series(key[order])
    rank = shuffled.groupby(shuffled.to_numpy()).cumcount().to_numpy()
    sizes = shuffled.map(shuffled.value_counts()).to_numpy()
    keep = rank < np.ceil(sizes * size / len(strata))
    return np.sort(order[keep])


def _stratum_codes(strata: pd.DataFrame) -> np.ndarray:
    """One integer per row, equal for rows equal in every column of ``strata`` (a missing
    value is a level of its own), shape (n,).

    Each column is factorised on its own and the codes are combined by mixed radix: the
    same grouping as factorising the rows' text, which cost about 3 s of CPU on a million
    customers (a million rows made text, then hashed as tuples), against a tenth of that.
    The numbers differ but the sample does not: it reads only which rows share a stratum.
    """
    key = np.zeros(len(strata), dtype=np.int64)
    for column in strata.columns:
        codes, uniques = pd.factorize(strata[column], use_na_sentinel=False)
        if len(key) and int(key.max()) >= np.iinfo(np.int64).max // max(len(uniques), 1):
            # the product of the levels beyond int64 (never with a few attributes):
            # renumbered densely first, which keeps the grouping
            key = pd.factorize(key)[0].astype(np.int64)
        key = key * len(uniques) + codes
    return key
