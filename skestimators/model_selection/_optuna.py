"""Hyper-parameter search with Optuna, pruning network trials epoch by epoch."""

from __future__ import annotations

import numbers
import os
import time
import warnings

import numpy as np
from joblib import effective_n_jobs
from optuna.pruners import BasePruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from sklearn import get_config
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.base import is_classifier as _is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import indexable

from .._engine import caller_stacklevel
from ..tracking import MLflowLogger
from ._dask import check_active_backend
from ._delegation import BestEstimatorMixin
from ._epochwise import network_step
from ._routing import route_params, scoring_spec
from ._stale import resume_stale_trials
from ._study import (
    FINISHED,
    Objective,
    check_distributions,
    cv_results,
    failed_runs,
    make_sampler,
    open_study,
    run_parallel,
    run_trials,
    search_identity,
    set_params,
)
from ._tracking import holds_network, parent_run

__all__ = ["OptunaSearchCV"]


class OptunaSearchCV(BestEstimatorMixin, MetaEstimatorMixin, BaseEstimator):
    """Search hyper-parameters with Optuna, pruning poor network trials early.

    Every trial cross-validates one set of parameters drawn by the sampler
    on the same folds. When the estimator is a network of this package (or a
    :class:`~sklearn.pipeline.Pipeline` ending in one), the trial trains its
    fold models in lockstep, one epoch of each fold at a time, and reports
    the fold-averaged ``refit`` metric on the test folds after every epoch to
    the pruner, which can stop the trial after a few epochs. Other estimators
    are fitted once per fold and never pruned.

    Parameters
    ----------
    estimator : estimator
        The model to tune (cloned for every fit).
    param_distributions : dict of str to optuna distribution
        The search space, e.g. ``{"lr": FloatDistribution(1e-4, 1e-1,
        log=True), "module_params": CategoricalDistribution(...)}``, with
        parameter names as in ``estimator.set_params`` (``step__param`` for
        pipelines), plus ``param__key`` for one key of a dict-valued
        parameter (``module_params__dropout``: the other keys are kept). A
        list is shorthand for a ``CategoricalDistribution`` (a tuple of two
        numbers is refused: a range or two choices?); keep categorical
        choices to None, bool, int, float and str, which every storage saves.
    n_trials : int or None, default=10
        Number of trials (complete, pruned or failed) the study should hold
        when ``fit`` returns: a study resumed after an interruption, or
        shared by several processes, runs only the missing trials. With
        several processes, trials that the others are still evaluating count
        (a process may return before they finish, and may overshoot by its
        last running trial). None runs until ``timeout``.
    timeout : float or None, default=None
        Stop starting new trials after this many seconds.
    cv : int, cross-validation generator or iterable, default=5
        As in :class:`~sklearn.model_selection.GridSearchCV`; the folds are
        drawn once per ``fit`` and shared by every trial.
    scoring : str, callable, list, tuple or dict, default=None
        As in ``GridSearchCV``, except that several metrics are given as a
        list or dict of scorers (a callable returning a dict is refused);
        None uses the estimator's ``score``.
    refit : bool or str, default=True
        Refit the best parameters on the whole data. With several metrics, the
        name of the metric to optimise (required).
    storage : str, path, optuna storage or None, default=None
        Where trials live: None in memory; a SQLAlchemy URL
        (``"sqlite:///study.db"``, ``"postgresql://user@host/db"``); a path to
        a SQLite file (``*.db``) or to an Optuna journal file (``*.log``,
        ``*.journal``); or a storage object (for instance an ``RDBStorage``
        with heartbeats, to mark the trials of killed processes failed).
        Processes fitting with the same ``storage`` and ``study_name`` share
        one study; finished trials are never lost when a process is killed.
    study_name : str or None, default=None
        Name of the study in ``storage`` (None: a new, generated name). A
        study of that name that exists is resumed only if the same search
        created it (the same estimator, search space, data, folds and
        scoring); another search's study is refused with the differences
        named, rather than mixing its trials into this one.
    sampler : optuna sampler or None, default=None
        None uses ``TPESampler(seed=random_state)``.
    pruner : optuna pruner or None, default=None
        None uses ``MedianPruner(n_startup_trials=3, n_warmup_steps=3)``:
        once three trials have completed, a trial whose fold-averaged score after
        epoch 3 or later is worse than the median of earlier trials at the
        same epoch stops (steps are epoch numbers, counted from 1 as in
        ``history_``). ``optuna.pruners.NopPruner()`` turns pruning off
        (and with it the per-epoch scoring and the lockstep training).
    n_jobs : int or None, default=None
        Trials run in parallel in this many joblib workers (processes, or the
        workers of a Dask cluster under ``joblib.parallel_config(
        backend="dask")``), sharing the study through ``storage`` (through a
        temporary journal file when ``storage=None``: the workers must then
        see this machine's temporary directory). Each worker trains with
        ``cores // n_jobs`` torch threads (joblib's ``OMP_NUM_THREADS``).
    error_score : "raise" or float, default=np.nan
        Score of a fold whose fit fails; NaN marks the trial failed, "raise"
        stops the search.
    random_state : int, RandomState instance or None, default=None
        Seed of the default sampler (parallel workers use ``seed + i``).
        Separate processes sharing one study need different seeds (or None),
        or their samplers propose the same parameters.
    tracking : MLflowLogger or None, default=None
        Log the search to MLflow: one parent run named ``"OptunaSearchCV"``
        (holding the search's parameters and, at the end, the metrics
        ``best_score`` and ``best_trial``), and under it one run per fold of
        every trial, named ``"trial<n>/fold<k>"`` and tagged ``trial`` and
        ``fold``, with that fit's parameters, learning curves and (with
        ``log_model=True``) network. The runs are written by copies of this
        logger added to the network step's ``callbacks``, in whichever
        process trains the fold; estimators without a network of this
        package log nothing. Runs of pruned trials are marked ``KILLED`` when
        the search ends, those of fits that raised ``FAILED``. See
        :class:`~skestimators.tracking.MLflowLogger`.

    Attributes
    ----------
    study_ : optuna.Study
        The study (in memory when ``storage=None``).
    n_trials_ : int
        Number of finished trials in the study (also the length of
        ``cv_results_``), including those of earlier runs and other processes.
    cv_results_ : dict of ndarray
        One entry per finished trial, in trial order, with scikit-learn's keys
        (``params``, ``param_<name>``, ``split<k>_test_<metric>``,
        ``mean_test_<metric>``, ``std_test_<metric>``, ``rank_test_<metric>``,
        ``mean_fit_time``...; ``<metric>`` is ``score`` for a single metric)
        plus ``number`` (trial number), ``state`` (``COMPLETE``, ``PRUNED``,
        ``FAIL``) and ``n_epochs`` (epochs trained, summed over folds; also
        in each trial's ``user_attrs``). Pruned and failed trials have NaN
        scores and rank last.
    best_index_ : int
        Index of the best trial in ``cv_results_``.
    best_params_ : dict
        Parameters of the best complete trial.
    best_score_ : float
        Its mean cross-validated ``refit`` metric.
    best_estimator_ : estimator
        The estimator refitted on all data with ``best_params_`` (``refit``).
    refit_time_ : float
        Seconds spent refitting.
    scorer_ : callable or dict
        The scorer(s).
    multimetric_ : bool
        Whether several metrics are scored.
    n_splits_ : int
        Number of cross-validation folds.

    See Also
    --------
    sklearn.model_selection.GridSearchCV : Exhaustive search, no pruning.
    compare_variants : Compare a few fixed variants on the same folds.
    skestimators.tracking.MLflowLogger : The logger of ``tracking``.

    Notes
    -----
    Early stopping: each fold's network keeps its own early stopping on its
    internal validation split (``early_stopping``, ``patience``), exactly as in
    an ordinary fit; a fold that stops early leaves the lockstep, and its
    final score (best weights restored) enters the mean reported for the
    following epochs. Pruning never changes how a finished trial was
    trained: a trial that is not pruned gives the same scores as with
    ``pruner=NopPruner()``.

    Per-epoch scores are computed by the network step on the test fold (the
    pipeline's fitted preprocessing is applied to it once); this costs one
    prediction of the test fold per epoch. Training in lockstep keeps the
    ``k`` fold models (and their optimizer states) in memory together: on a
    GPU that is ``k`` times the memory of one fit (the engine keeps training
    data on the CPU when the device is short of memory). Cached GPU memory
    is released after each fold. With ``checkpoint`` set on the network,
    ``"runs/{params}-{data}"`` gives each trial's folds their own
    directories (parallel trials would otherwise share one).

    A trial that a killed search process (on this machine) left running in
    a persistent storage is evaluated again, in place, when the search is
    run again: with the checkpoints above its folds continue where they
    stopped. Trials of processes on other machines are left to them; an
    ``RDBStorage`` with heartbeats marks those of dead processes failed.

    Examples
    --------
    >>> from optuna.distributions import FloatDistribution
    >>> from sklearn.datasets import make_classification
    >>> from skestimators import NetClassifier
    >>> from skestimators.model_selection import OptunaSearchCV
    >>> X, y = make_classification(120, 6, random_state=0)
    >>> search = OptunaSearchCV(
    ...     NetClassifier(max_epochs=3, device="cpu", random_state=0),
    ...     {"lr": FloatDistribution(1e-3, 1e-1, log=True)},
    ...     n_trials=3, cv=3, random_state=0,
    ... ).fit(X, y)
    >>> search.n_trials_, sorted(search.best_params_)
    (3, ['lr'])
    >>> search.predict(X[:4]).shape
    (4,)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"])],
        "param_distributions": [dict],
        "n_trials": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "timeout": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "cv": ["cv_object"],
        "scoring": [str, callable, list, tuple, dict, None],
        "refit": ["boolean", str],
        "storage": [None, str, os.PathLike, BaseStorage],
        "study_name": [None, str],
        "sampler": [None, BaseSampler],
        "pruner": [None, BasePruner],
        "n_jobs": [numbers.Integral, None],
        "error_score": [StrOptions({"raise"}), numbers.Real],
        "random_state": ["random_state"],
        "tracking": [None, MLflowLogger],
    }

    def __init__(
        self,
        estimator,
        param_distributions,
        *,
        n_trials=10,
        timeout=None,
        cv=5,
        scoring=None,
        refit=True,
        storage=None,
        study_name=None,
        sampler=None,
        pruner=None,
        n_jobs=None,
        error_score=np.nan,
        random_state=None,
        tracking=None,
    ):
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_trials = n_trials
        self.timeout = timeout
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.storage = storage
        self.study_name = study_name
        self.sampler = sampler
        self.pruner = pruner
        self.n_jobs = n_jobs
        self.error_score = error_score
        self.random_state = random_state
        self.tracking = tracking

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, groups=None, **fit_params):
        """Run the trials, then refit the best parameters on all the data.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput of shape (n_samples, ...)
            Inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets), \
default=None
            Targets.
        groups : array-like of shape (n_samples,), default=None
            Group labels for group splitters (with metadata routing enabled,
            routed as the other parameters).
        **fit_params : dict
            Passed to ``estimator.fit``; sample-aligned arrays
            (``sample_weight``) are indexed per fold. With metadata routing
            enabled (``sklearn.set_config(enable_metadata_routing=True)``),
            each goes where it is requested, as in ``cross_validate``: to
            ``estimator.fit``, the splitter, and the scorer of each fold (not
            to the per-epoch scores that the pruner reads), also in the refit.

        Returns
        -------
        self : OptunaSearchCV
            The fitted search.
        """
        if self.n_trials is None and self.timeout is None:
            raise ValueError("Set n_trials, timeout or both; the search would not end.")
        check_active_backend()
        distributions = check_distributions(self.param_distributions, self.estimator)
        estimator = self.estimator
        X, y, groups = indexable(X, y, groups)
        cv = check_cv(self.cv, y, classifier=_is_classifier(estimator))
        # With metadata routing, each parameter (groups too, as in
        # GridSearchCV) goes where it is requested.
        if groups is not None and get_config()["enable_metadata_routing"]:
            fit_params, groups = {**fit_params, "groups": groups}, None
        routed = route_params(
            estimator, cv, self.scoring, fit_params, groups, owner=type(self).__name__
        )
        splits = list(cv.split(X, y, **routed.splitter.split))
        fit_params, score_params = routed.estimator.fit, routed.scorer.score
        spec = scoring_spec(estimator, self.scoring)
        scoring = self.scoring
        multimetric = isinstance(scoring, (list, tuple, set, dict))
        metric = self._objective_metric(spec, multimetric)
        pruner = MedianPruner(3, 3) if self.pruner is None else self.pruner
        epochwise = network_step(estimator) is not None and not isinstance(
            pruner, NopPruner
        )
        if not epochwise and not isinstance(pruner, NopPruner):
            if self.pruner is not None and holds_network(estimator):
                warnings.warn(
                    f"{type(self.pruner).__name__} cannot prune these trials: "
                    "epoch scores are reported by a network that is the "
                    "estimator or the final step of a Pipeline, and this "
                    "network is inside another estimator (a "
                    "TransformedTargetRegressor, an ensemble). Every trial "
                    "trains to its end.",
                    UserWarning,
                    stacklevel=caller_stacklevel(),
                )
        settings = self.get_params(deep=False)
        del settings["tracking"]
        with parent_run(self.tracking, "OptunaSearchCV", settings) as runs:
            objective = Objective(
                estimator,
                X,
                y,
                splits,
                check_scoring(estimator, spec),
                metric,
                spec[metric] if epochwise else None,
                fit_params,
                self.error_score,
                runs,
                score_params,
            )
            n_jobs = effective_n_jobs(self.n_jobs)
            identity = None
            if self.storage is not None and self.study_name is not None:
                # A named study may exist: it must be this search's.
                identity = search_identity(
                    estimator, distributions, X, y, groups, splits, self.scoring
                )
            if n_jobs == 1:
                study = open_study(
                    self.storage, self.study_name, self._sampler(0), pruner, identity
                )
                resumed = len(study.get_trials(deepcopy=False))
                if resumed:  # new proposals, not those of the first run again
                    study.sampler = self._sampler(0, resumed)
                resume_stale_trials(study, objective)
                run_trials(study, objective, distributions, self.n_trials, self.timeout)
            else:
                study = run_parallel(
                    n_jobs,
                    self.storage,
                    self.study_name,
                    self._sampler,
                    pruner,
                    objective,
                    distributions,
                    self.n_trials,
                    self.timeout,
                    identity,
                )
            if runs is not None:  # the runs of fits that raised end FAILED
                runs.failed |= failed_runs(study.get_trials(deepcopy=False))
            self.study_ = study
            self.n_splits_ = len(splits)
            self.multimetric_ = multimetric
            self.scorer_ = (
                {m: check_scoring(estimator, s) for m, s in spec.items()}
                if multimetric
                else check_scoring(estimator, spec[metric])
            )
            trials = study.get_trials(deepcopy=False, states=FINISHED)
            self.n_trials_ = len(trials)
            keys = {m: (m if multimetric else "score") for m in spec}
            self.cv_results_ = cv_results(trials, keys, len(splits))
            if not any(t.state == TrialState.COMPLETE for t in trials):
                message = (
                    f"None of the {len(trials)} trials of study {study.study_name!r} "
                    "completed (all pruned or failed)."
                )
                if objective.first_error is not None:
                    # Every fit failing is usually a data problem: show its error.
                    error = objective.first_error
                    if hasattr(error, "add_note"):
                        error.add_note(message)
                    raise error
                raise ValueError(message)
            best = study.best_trial
            numbers_ = self.cv_results_["number"]
            self.best_index_ = int(np.flatnonzero(numbers_ == best.number)[0])
            self.best_params_ = dict(best.params)
            self.best_score_ = float(best.value)
            if runs is not None:
                runs.results = {
                    "best_score": self.best_score_,
                    "best_trial": best.number,
                }
            if self.refit:
                start = time.perf_counter()
                self.best_estimator_ = set_params(clone(estimator), self.best_params_)
                self.best_estimator_.fit(X, y, **fit_params)
                self.refit_time_ = time.perf_counter() - start
        return self

    # -- helpers ---------------------------------------------------------------------
    def _objective_metric(self, spec, multimetric):
        if not multimetric:
            return next(iter(spec))
        if isinstance(self.refit, str) and self.refit in spec:
            return self.refit
        raise ValueError(
            f"With several metrics ({sorted(spec)}), refit must name the one to "
            f"optimise, got refit={self.refit!r}."
        )

    def _sampler(self, index, resumed=0):
        return make_sampler(self.sampler, self.random_state, index, resumed)
