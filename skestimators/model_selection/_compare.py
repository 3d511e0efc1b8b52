"""Compare model variants on exactly the same cross-validation folds."""

from __future__ import annotations

import copy
import gc
import numbers
import sys
import time
import traceback
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _num_samples,
    indexable,
)

from .._engine import caller_stacklevel
from ._dask import check_active_backend
from ._routing import multimetric_scorer, route_params, split_fit_params
from ._summaries import COLUMNS

__all__ = ["compare_variants"]


def compare_variants(
    variants: Mapping,
    X,
    y=None,
    *,
    cv=5,
    scoring=None,
    groups=None,
    params: dict | None = None,
    n_repeats: int = 1,
    n_jobs: int | None = None,
    random_state=None,
    error_score=np.nan,
    tracking=None,
    verbose: int = 0,
) -> pd.DataFrame:
    """Cross-validate several variants of a model on the very same folds.

    The folds are drawn once per repeat with ``cv.split(X, y, groups)`` and
    every variant is fitted and scored on those folds, so that differences
    between variants are not differences between splits. With several
    repeats (or a ``random_state``), each repeat reshuffles the folds with its
    own seed when the splitter has a ``random_state`` (an integer ``cv``
    becomes a shuffled (Stratified)KFold; a warning says when the reseeded
    splitter still gives the first repeat's folds), and sets the same per-repeat seed
    as the ``random_state`` of every variant (and of every pipeline step that
    has one), so that variants differ only by design within a repeat.

    Parameters
    ----------
    variants : dict of str to estimator
        The variants by name: estimators or pipelines (cloned, never fitted
        in place).
    X : array-like, DataFrame or MultiInput of shape (n_samples, ...)
        Inputs.
    y : array-like of shape (n_samples,) or (n_samples, n_targets), default=None
        Targets.
    cv : int, cross-validation generator or iterable, default=5
        As in :func:`~sklearn.model_selection.cross_validate`: an integer is
        a (Stratified)KFold, stratified when every variant is a classifier.
    scoring : str, callable, list, tuple or dict, default=None
        One or several metrics, as in
        :func:`~sklearn.model_selection.cross_validate`; None uses each
        variant's ``score`` method (metric ``"score"``).
    groups : array-like of shape (n_samples,), default=None
        Group labels for group splitters.
    params : dict, default=None
        Fit parameters of every variant (``sample_weight``, the ``groups`` of
        an internal validation split, ``step__param`` for pipelines), those
        of one value per sample indexed by fold, as ``cross_validate``'s
        ``params``. With scikit-learn's metadata routing enabled, they are
        routed as there, to each variant's ``fit``, its scorer and the
        splitter (then pass ``groups`` here, not as ``groups``).
    n_repeats : int, default=1
        Number of repetitions of the whole cross-validation.
    n_jobs : int, default=None
        Fits run in parallel through joblib (any backend, Dask included:
        every worker is checked first with :func:`check_dask_workers`).
    random_state : int, RandomState instance or None, default=None
        Seeds the per-repeat seeds of the splitter and of the variants.
        With ``n_repeats=1`` and ``random_state=None`` splitter and variants
        are used as given.
    error_score : "raise" or float, default=np.nan
        Value of every metric of a fit that raises (in ``fit`` or while
        scoring), as in :func:`~sklearn.model_selection.cross_validate`: the
        comparison goes on, a :class:`~sklearn.exceptions.FitFailedWarning`
        names each failed fit's variant, fold and error (with the traceback
        of the first fit that failed with each error), and (with NaN) the
        summaries of a variant with a failed fit are NaN rather than means
        over the fits that worked. When every fit fails, a ``ValueError``
        says so. With
        ``"raise"``, the first error stops the comparison, with a note
        naming its variant and fold.
    tracking : MLflowLogger or None, default=None
        Log the comparison to MLflow: one parent run named
        ``"compare_variants"`` (holding the comparison's settings), and under
        it one run per fit of a network variant, named
        ``"<variant>/repeat<r>/fold<k>"`` and tagged ``variant``, ``repeat``
        and ``fold``, with the parameters, learning curves and (with
        ``log_model=True``) the network of that fit. The runs are written by
        copies of this logger added to the network step's ``callbacks``;
        variants without a network of this package log nothing. The run of a
        fit that raised ends ``FAILED`` (whether scored ``error_score`` or
        raised again), and the parent run records the number of failed
        fits as the metric ``failed_fits``. See
        :class:`~skestimators.tracking.MLflowLogger`.
    verbose : int, default=0
        When positive, print one line on standard error as each fit ends:
        the fits done out of the total, the seconds elapsed since the
        comparison started, and the variant, fold and fit time of the fit
        that ended. Progress is not reported under a joblib backend that
        cannot return results as they come (``"multiprocessing"``).

    Returns
    -------
    results : DataFrame
        One row per variant, repeat, fold and metric, with columns
        ``variant, repeat, fold, metric, value, fit_time`` (seconds; the
        same for every metric of a fit). Higher values are better, as
        everywhere in scikit-learn (``neg_*`` metrics are negated errors).

    See Also
    --------
    summarize_comparison : Mean ± std per variant and metric.
    plot_comparison : Box and strip plots of the fold scores.
    OptunaSearchCV : Tune one model rather than compare a few.
    skestimators.tracking.MLflowLogger : The logger of ``tracking``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skestimators.model_selection import compare_variants
    >>> X, y = make_classification(120, 6, random_state=0)
    >>> df = compare_variants(
    ...     {"linear": LogisticRegression(), "tree": DecisionTreeClassifier()},
    ...     X, y, cv=3, scoring=["accuracy", "roc_auc"], n_repeats=2,
    ...     random_state=0,
    ... )
    >>> df.shape
    (24, 6)
    >>> sorted(df["metric"].unique())
    ['accuracy', 'roc_auc']
    """
    if not isinstance(variants, Mapping) or not variants:
        raise ValueError("variants must be a non-empty dict of name -> estimator.")
    for name, estimator in variants.items():
        if not hasattr(estimator, "fit") or isinstance(estimator, type):
            raise TypeError(
                f"Variant {name!r} is not an estimator instance (an object with "
                f"a fit method): got {estimator!r}."
            )
    if not isinstance(n_repeats, numbers.Integral) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive integer, got {n_repeats!r}.")
    check_error_score(error_score)
    check_active_backend()
    X, y, groups = indexable(X, y, groups)
    classifier = all(is_classifier(v) for v in variants.values())
    if not isinstance(cv, numbers.Integral) and not hasattr(cv, "split"):
        cv = list(cv)  # an iterable of folds, a generator too: the same each repeat
    template = check_cv(cv, y, classifier=classifier)  # its requests route params
    routed = {
        name: route_params(estimator, template, scoring, params, groups)
        for name, estimator in variants.items()
    }
    split_params = next(iter(routed.values())).splitter.split
    n_samples = _num_samples(X)
    tasks, seen = [], []
    for repeat, seed in enumerate(repeat_seeds(random_state, n_repeats)):
        splitter = reseeded_cv(cv, y, classifier, seed, warn=n_repeats > 1)
        splits = list(splitter.split(X, y, **split_params))
        if not splits:
            raise ValueError(f"The cross-validation {cv!r} yields no folds.")
        if (
            repeat == 1
            and _same_folds(seen, splits)
            and _reseeded(cv, check_cv(cv), seed) is not None  # it was reshuffled
        ):
            warnings.warn(
                f"{_describe(splitter)} gave the same folds in the first two "
                "repeats although it was reseeded: its random_state does not "
                "change these folds (SpatialBlockKFold's only breaks ties "
                "between blocks of equal size). The repeats differ only by the "
                "estimators' seeds.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        seen = splits
        for name, estimator in variants.items():
            fit, score = routed[name].estimator.fit, routed[name].scorer.score
            tasks += [
                (
                    name, repeat, fold, estimator, seed, train, test,
                    split_fit_params(fit, n_samples, train),
                    split_fit_params(score, n_samples, test),
                )
                for fold, (train, test) in enumerate(splits)
            ]  # fmt: skip
    settings = dict(
        variants=", ".join(map(str, variants)),
        cv=cv,
        scoring=scoring,
        n_repeats=n_repeats,
        random_state=random_state,
    )
    # Imported here: the tracking helpers build on _epochwise, which imports
    # this module.
    from ._tracking import parent_run

    with parent_run(tracking, "compare_variants", settings) as runs:
        if runs is not None:
            tasks = [_with_logger(runs, *task) for task in tasks]
        results = _run_fits(
            X, y, _Settings(scoring, error_score, n_repeats), tasks, n_jobs, verbose
        )
        if runs is not None:
            failed = [task for task, result in zip(tasks, results) if result[2]]
            runs.failed.update(run_name(*task[:3]) for task in failed)
            runs.results["failed_fits"] = len(failed)
        metrics = _metrics_of(results)
    rows = [
        (name, repeat, fold, metric, float(value), fit_time)
        for (name, repeat, fold, *_), (scores, fit_time, _) in zip(tasks, results)
        for metric, value in (scores or dict.fromkeys(metrics, error_score)).items()
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def _same_folds(first, second):
    """Whether two lists of (train, test) folds hold the same test sets."""
    return len(first) == len(second) and all(
        np.array_equal(np.sort(a[1]), np.sort(b[1])) for a, b in zip(first, second)
    )


def check_error_score(error_score):
    """Refuse an ``error_score`` other than ``"raise"`` or a number."""
    if not (
        error_score == "raise"
        if isinstance(error_score, str)
        else isinstance(error_score, numbers.Real)
    ):
        raise ValueError(
            f'error_score must be "raise" or a number, got {error_score!r}.'
        )


def _metrics_of(results):
    """The metric names, from the fits that worked; warn of those that failed.

    Raises when every fit failed (there is nothing to compare).
    """
    errors = [error for _, _, error in results if error is not None]
    if len(errors) == len(results):
        raise ValueError(
            f"All {len(results)} fits failed. The errors:\n" + _report(errors)
        )
    if errors:
        warnings.warn(
            f"{len(errors)} of {len(results)} fits failed; their scores are set "
            "to error_score. The errors:\n" + _report(errors),
            FitFailedWarning,
            stacklevel=caller_stacklevel(),
        )
    scores = next(scores for scores, _, error in results if error is None)
    return list(scores)


class _FitError(NamedTuple):
    """A failed fit: ``where`` names its variant and fold, ``kind`` the
    exception; ``trace`` is its formatted traceback."""

    where: str
    kind: str
    trace: str

    @property
    def line(self):
        return f"{self.where}: {self.kind}"


def _report(errors, limit=10, traces=3):
    """At most ``limit`` distinct error lines (then how many more there were),
    and the traceback of the first fit that failed with each of the first
    ``traces`` distinct exceptions: a comparison of hours need not be run
    again with ``error_score="raise"`` to see where a fit failed."""
    lines = list(dict.fromkeys(error.line for error in errors))
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    first = {}
    for error in errors:
        first.setdefault(error.kind, error)
    shown = list(first.values())[:traces]
    details = [f"\n{error.where}:\n{error.trace}" for error in shown]
    return (
        "\n".join(lines) + "\n\nWhere each error was first raised:" + "".join(details)
    )


def _run_fits(X, y, settings, tasks, n_jobs, verbose):
    """``(scores, fit_time, error)`` of each task, in order (see
    :func:`_named_fit_and_score`); with ``verbose``, each fit is reported on
    stderr as it ends. ``X`` and ``y`` are arguments of their own, so that
    joblib's Dask backend sends them to the workers once."""
    parallel = None
    if verbose:
        try:
            parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        except ValueError:  # a backend that cannot return results as they come
            pass
    if parallel is None:
        return Parallel(n_jobs=n_jobs)(
            delayed(_named_fit_and_score)(X, y, settings, *task) for task in tasks
        )
    start = time.perf_counter()
    results = [None] * len(tasks)
    jobs = (
        delayed(_numbered_fit_and_score)(i, X, y, settings, *task)
        for i, task in enumerate(tasks)
    )
    for done, (index, result) in enumerate(parallel(jobs), start=1):
        results[index] = result
        name, repeat, fold = tasks[index][:3]
        where = _where(repeat, fold, settings.n_repeats)
        outcome = "failed after " if result[2] is not None else ""
        print(
            f"[compare_variants] {done}/{len(tasks)} fits done, "
            f"{time.perf_counter() - start:.0f} s elapsed "
            f"({name}, {where}: {outcome}{result[1]:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return results


def _numbered_fit_and_score(index, *args):
    """``_named_fit_and_score`` with the task's index (results come in any
    order)."""
    return index, _named_fit_and_score(*args)


class _Settings(NamedTuple):
    """The settings every fit of a comparison shares."""

    scoring: object
    error_score: object
    n_repeats: int


def _named_fit_and_score(X, y, settings, name, repeat, fold, template, *task):
    """``(scores, fit_time, None)`` of one fit, or ``(None, seconds, error)``
    when it raised and ``error_score`` is not ``"raise"``: ``error``, a
    :class:`_FitError`, names the variant, fold and exception and holds the
    traceback as text (it crosses to the calling process, where the failures
    are reported together). With ``"raise"``, the exception gets a note
    naming the variant and fold."""
    start = time.perf_counter()
    try:
        return (*_fit_and_score(X, y, settings.scoring, template, *task), None)
    except Exception as exc:
        where = _where(repeat, fold, settings.n_repeats)
        if settings.error_score == "raise":
            exc.add_note(f"compare_variants: raised by variant {name!r}, {where}.")
            raise
        kind = f"{type(exc).__name__}: {exc}"
        trace = "".join(traceback.format_exception(exc)).rstrip()
        error = _FitError(f"variant {name!r}, {where}", kind, trace)
        return None, time.perf_counter() - start, error


def _where(repeat, fold, n_repeats):
    """``"fold k"``, and its repeat when there are several."""
    return f"fold {fold}" + (f" of repeat {repeat}" if n_repeats > 1 else "")


def repeat_seeds(random_state, n_repeats):
    """Yield the random seed of each repeat: None for all when ``n_repeats=1`` and
    ``random_state=None`` (splitter and estimators are used as given)."""
    rng = check_random_state(random_state)
    reseed = n_repeats > 1 or random_state is not None
    for _ in range(n_repeats):
        yield int(rng.randint(np.iinfo(np.int32).max)) if reseed else None


def reseeded_cv(cv, y, classifier, seed, *, warn=False):
    """``check_cv(cv)`` reshuffled with ``seed`` when the splitter allows it."""
    splitter = check_cv(cv, y, classifier=classifier)
    if seed is None:
        return splitter
    reseeded = _reseeded(cv, splitter, seed)
    if reseeded is None:
        if warn:
            warnings.warn(
                f"{_describe(splitter)} cannot be reshuffled (no random_state "
                "or shuffle=False): every repeat uses the same folds; only the "
                "estimators are reseeded.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        return splitter
    return reseeded


def _reseeded(cv, splitter, seed):
    """A copy of ``splitter`` drawing its folds from ``seed``, or None.

    An integer ``cv`` becomes a shuffled K-fold. A splitter that wraps a base
    splitter in its ``cv`` (:class:`BufferedKFold`) has that base reseeded:
    its own ``random_state`` seeds only its default base.
    """
    if isinstance(cv, numbers.Integral):
        splitter.shuffle = True
    inner = getattr(splitter, "cv", None)  # a list of folds in check_cv's wrapper
    if _wraps_splitter(inner):
        base = _reseeded(inner, check_cv(inner), seed)
        if base is None:
            return None
        splitter = copy.copy(splitter)
        splitter.cv = base
        return splitter
    shuffles = getattr(splitter, "shuffle", True) is not False
    if not (hasattr(splitter, "random_state") and shuffles):
        return None
    splitter = copy.copy(splitter)
    splitter.random_state = seed
    return splitter


def _wraps_splitter(inner):
    """Whether a splitter's ``cv`` is a base splitter it draws folds from.

    scikit-learn's repeated splitters hold the splitter *class* there, which
    they build with their own ``random_state``.
    """
    if isinstance(inner, numbers.Integral):
        return True
    return hasattr(inner, "split") and not isinstance(inner, type)


def _describe(splitter):
    inner = getattr(splitter, "cv", None)
    if not _wraps_splitter(inner):
        return type(splitter).__name__
    return f"{type(splitter).__name__}(cv={inner!r})"


def reseed(estimator, seed):
    """Set every ``random_state`` parameter of ``estimator`` (nested ones too)."""
    names = [
        k
        for k in estimator.get_params(deep=True)
        if k == "random_state" or k.endswith("__random_state")
    ]
    return estimator.set_params(**dict.fromkeys(names, seed)) if names else estimator


def free_device_memory():
    """Give cached GPU memory back after a fit (a no-op without CUDA)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gc.collect()  # tensors in reference cycles (optimizer state) first
        torch.cuda.empty_cache()


def _fit_and_score(
    X, y, scoring, template, seed, train, test, fit_params, score_params
):
    # The clone is made here, in the worker, so that the fitted model is
    # local and its (GPU) memory can be freed before returning.
    estimator = clone(template)
    if seed is not None:
        reseed(estimator, seed)
    scorer = multimetric_scorer(estimator, scoring)
    X_train, X_test = _safe_indexing(X, train), _safe_indexing(X, test)
    y_train = None if y is None else _safe_indexing(y, train)
    y_test = None if y is None else _safe_indexing(y, test)
    start = time.perf_counter()
    estimator.fit(X_train, y_train, **fit_params)
    fit_time = time.perf_counter() - start
    scores = _flat(scorer(estimator, X_test, y_test, **score_params))
    del estimator
    free_device_memory()
    return scores, fit_time


def _flat(scores):
    """``{metric: value}``, a callable's dict of metrics in place of its own.

    A ``scoring`` callable may return ``{name: value}``, as in
    ``cross_validate``; its metrics take the callable's place.
    """
    flat = {}
    for metric, value in scores.items():
        for name, score in (
            value if isinstance(value, Mapping) else {metric: value}
        ).items():
            if name in flat:
                raise ValueError(
                    f"Two metrics are named {name!r}: a scoring callable returns "
                    "a metric of the same name as another."
                )
            flat[name] = score
    return flat


def run_name(name, repeat, fold):
    """The name of the tracking run of one fit."""
    return f"{name}/repeat{repeat}/fold{fold}"


def _with_logger(runs, name, repeat, fold, estimator, *rest):
    """The task with a clone of its estimator logging one nested run."""
    estimator = runs.attach(
        clone(estimator),
        run_name(name, repeat, fold),
        {"variant": name, "repeat": repeat, "fold": fold},
    )
    return (name, repeat, fold, estimator, *rest)
