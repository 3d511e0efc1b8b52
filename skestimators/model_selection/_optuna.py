"""Hyper-parameter search with Optuna, pruning network trials epoch by epoch."""

from __future__ import annotations

import copy
import numbers
import os
import shutil
import tempfile
import time

import numpy as np
import optuna
from joblib import effective_n_jobs
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.pruners import BasePruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler, TPESampler
from optuna.storages import BaseStorage, InMemoryStorage
from optuna.trial import TrialState
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.base import is_classifier as _is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils import check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from ._compare import scoring_spec
from ._dask import check_active_backend
from ._epochwise import network_step
from ._study import (
    FINISHED,
    Objective,
    cv_results,
    open_study,
    resolve_storage,
    run_trials,
    set_params,
    worker,
)

__all__ = ["OptunaSearchCV"]


def _delegates(attr):
    def check(self):
        getattr(getattr(self, "best_estimator_", self.estimator), attr)
        return True

    return check


class OptunaSearchCV(MetaEstimatorMixin, BaseEstimator):
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
        list is shorthand for a ``CategoricalDistribution``; keep categorical
        choices to None, bool, int, float and str, which every storage saves.
    n_trials : int or None, default=10
        Number of finished trials (complete, pruned or failed) the study
        should hold when ``fit`` returns: a study resumed after an
        interruption, or shared by several processes, runs only the missing
        trials (each process may overshoot by its last running trial). None
        runs until ``timeout``.
    timeout : float or None, default=None
        Stop starting new trials after this many seconds.
    cv : int, cross-validation generator or iterable, default=5
        As in :class:`~sklearn.model_selection.GridSearchCV`; the folds are
        drawn once per ``fit`` and shared by every trial.
    scoring : str, callable, list, tuple or dict, default=None
        As in ``GridSearchCV``; None uses the estimator's ``score``.
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
        Name of the study in ``storage`` (None: a new, generated name).
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
    is released after each fold. The engine writes no checkpoint files, so
    parallel trials never share files.

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
            Group labels for group splitters.
        **fit_params : dict
            Passed to ``estimator.fit``; sample-aligned arrays
            (``sample_weight``) are indexed per fold.

        Returns
        -------
        self : OptunaSearchCV
            The fitted search.
        """
        if self.n_trials is None and self.timeout is None:
            raise ValueError("Set n_trials, timeout or both; the search would not end.")
        check_active_backend()
        distributions = self._distributions()
        estimator = self.estimator
        splits = list(check_cv(self.cv, y, classifier=_is_classifier(estimator)).split(
            X, y, groups
        ))
        spec = scoring_spec(estimator, self.scoring)
        scoring = self.scoring
        multimetric = isinstance(scoring, (list, tuple, set, dict))
        metric = self._objective_metric(spec, multimetric)
        pruner = MedianPruner(3, 3) if self.pruner is None else self.pruner
        epochwise = network_step(estimator) is not None and not isinstance(
            pruner, NopPruner
        )
        objective = Objective(
            estimator, X, y, splits, check_scoring(estimator, spec), metric,
            spec[metric] if epochwise else None, fit_params, self.error_score,
        )
        n_jobs = effective_n_jobs(self.n_jobs)
        if n_jobs == 1:
            study = open_study(self.storage, self.study_name, self._sampler(0), pruner)
            run_trials(study, objective, distributions, self.n_trials, self.timeout)
        else:
            study = self._run_parallel(n_jobs, pruner, objective, distributions)
        self.study_ = study
        self.n_splits_ = len(splits)
        self.multimetric_ = multimetric
        self.scorer_ = (
            {m: check_scoring(estimator, s) for m, s in spec.items()}
            if multimetric else check_scoring(estimator, spec[metric])
        )
        trials = study.get_trials(deepcopy=False, states=FINISHED)
        self.n_trials_ = len(trials)
        keys = {m: (m if multimetric else "score") for m in spec}
        self.cv_results_ = cv_results(trials, keys, len(splits))
        if not any(t.state == TrialState.COMPLETE for t in trials):
            raise ValueError(
                f"None of the {len(trials)} trials of study {study.study_name!r} "
                "completed (all pruned or failed); see cv_results_['state'] and "
                "the trials' user_attrs['error']."
            )
        best = study.best_trial
        numbers_ = self.cv_results_["number"]
        self.best_index_ = int(np.flatnonzero(numbers_ == best.number)[0])
        self.best_params_ = dict(best.params)
        self.best_score_ = float(best.value)
        if self.refit:
            start = time.perf_counter()
            self.best_estimator_ = set_params(clone(estimator), self.best_params_)
            self.best_estimator_.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - start
        return self

    # -- helpers ---------------------------------------------------------------------
    def _distributions(self):
        out = {}
        for name, dist in self.param_distributions.items():
            if isinstance(dist, (list, tuple)):
                dist = CategoricalDistribution(dist)
            if not isinstance(dist, BaseDistribution):
                raise TypeError(
                    f"param_distributions[{name!r}] must be an optuna distribution "
                    "(optuna.distributions.FloatDistribution, IntDistribution, "
                    f"CategoricalDistribution) or a list, got {dist!r}."
                )
            out[name] = dist
        unknown = {n.split("__")[0] for n in out} - set(self.estimator.get_params())
        if unknown:
            raise ValueError(
                f"param_distributions has parameters {sorted(unknown)} that "
                f"{type(self.estimator).__name__} does not have."
            )
        return out

    def _objective_metric(self, spec, multimetric):
        if not multimetric:
            return next(iter(spec))
        if isinstance(self.refit, str) and self.refit in spec:
            return self.refit
        raise ValueError(
            f"With several metrics ({sorted(spec)}), refit must name the one to "
            f"optimise, got refit={self.refit!r}."
        )

    def _sampler(self, index):
        if self.sampler is not None:
            sampler = copy.deepcopy(self.sampler)
            if index:
                sampler.reseed_rng()
            return sampler
        seed = self.random_state
        if seed is not None and not isinstance(seed, numbers.Integral):
            seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
        return TPESampler(seed=None if seed is None else int(seed) + index)

    def _run_parallel(self, n_jobs, pruner, objective, distributions):
        storage, journal_dir = self.storage, None
        if isinstance(storage, InMemoryStorage):
            raise ValueError(
                "An InMemoryStorage cannot be shared by parallel workers; use "
                "storage=None, a file or a database URL."
            )
        if storage is None:
            journal_dir = tempfile.mkdtemp(prefix="skestimators-optuna-")
            storage = os.path.join(journal_dir, "study.journal")
        try:
            study = open_study(storage, self.study_name, self._sampler(0), pruner)
            Parallel(n_jobs=n_jobs)(
                delayed(worker)(
                    storage, study.study_name, self._sampler(i), pruner, objective,
                    distributions, self.n_trials, self.timeout, journal_dir,
                )
                for i in range(n_jobs)
            )
            if journal_dir is None:
                return study
            memory = InMemoryStorage()
            optuna.copy_study(
                from_study_name=study.study_name, from_storage=resolve_storage(storage),
                to_storage=memory,
            )
            return optuna.load_study(
                study_name=study.study_name, storage=memory, sampler=self._sampler(0),
                pruner=pruner,
            )
        finally:
            if journal_dir is not None:
                shutil.rmtree(journal_dir, ignore_errors=True)

    # -- the refitted estimator --------------------------------------------------------
    @available_if(_delegates("predict"))
    def predict(self, X):
        """Predict with ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    @available_if(_delegates("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @available_if(_delegates("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_delegates("decision_function"))
    def decision_function(self, X):
        """Decision function of ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.decision_function(X)

    @available_if(_delegates("transform"))
    def transform(self, X):
        """Transform with ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.transform(X)

    @available_if(_delegates("inverse_transform"))
    def inverse_transform(self, X):
        """Inverse transform with ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.inverse_transform(X)

    def score(self, X, y=None):
        """Score ``best_estimator_`` with the ``refit`` metric.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.
        y : array-like, default=None
            Targets.

        Returns
        -------
        score : float
            The metric that was optimised.
        """
        check_is_fitted(self, "best_estimator_")
        scorer = self.scorer_[self.refit] if self.multimetric_ else self.scorer_
        return scorer(self.best_estimator_, X, y)

    @property
    def classes_(self):
        """Class labels of ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self):
        """Number of features seen by ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.n_features_in_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = copy.deepcopy(sub.classifier_tags)
        tags.regressor_tags = copy.deepcopy(sub.regressor_tags)
        tags.transformer_tags = copy.deepcopy(sub.transformer_tags)
        tags.input_tags.pairwise = sub.input_tags.pairwise
        tags.input_tags.sparse = sub.input_tags.sparse
        tags.input_tags.allow_nan = sub.input_tags.allow_nan
        tags.target_tags = copy.deepcopy(sub.target_tags)
        tags.non_deterministic = sub.non_deterministic
        return tags
