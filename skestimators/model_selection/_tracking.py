"""Nested MLflow runs for comparisons and searches: one parent, one run per fit.

The parent run is created in the calling process; every fit then gets, on its
network step, a copy of the user's :class:`~skestimators.tracking.MLflowLogger`
naming the fit and pointing at the parent. Only the logger's parameters cross
to joblib workers, which open their own MLflow client.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline

from .._engine import BaseNet, caller_stacklevel
from ..tracking import (
    MLflowLogger,
    end_children,
    log_metrics,
    log_params,
    loggable,
    make_client,
    start_run,
)

CALLBACK_NAME = "tracking"


def tracked_network(estimator):
    """The package network a logger can be given inside ``estimator``, or
    None: ``estimator`` itself, the final step of a (nested) Pipeline, or the
    ``regressor`` a ``TransformedTargetRegressor`` wraps (which each fit
    clones with the logger)."""
    while True:
        if isinstance(estimator, Pipeline):
            estimator = estimator.steps[-1][1]
        elif isinstance(estimator, TransformedTargetRegressor):
            estimator = estimator.regressor
        else:
            return estimator if isinstance(estimator, BaseNet) else None


def holds_network(estimator) -> bool:
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    return any(isinstance(v, BaseNet) for v in params.values())


class NestedRuns:
    """Attach per-fit copies of ``logger`` nested under ``parent_run_id``.

    Picklable (the logger keeps only its parameters), so that it travels to
    joblib workers with the estimators it prepares. ``results`` holds metrics
    logged on the parent run when it ends (the best score of a search);
    ``failed`` the names of the runs of fits that raised, marked ``FAILED``
    when it ends.
    """

    def __init__(self, logger, parent_run_id):
        self.logger = logger
        self.parent_run_id = parent_run_id
        self.results = {}
        self.failed = set()

    def attach(self, estimator, run_name, tags):
        """Add a logger of this fit to ``estimator``'s network step, in place.

        ``estimator`` is a package network or a (nested) Pipeline ending in
        one; the logger is appended to the step's ``callbacks`` as
        ``("tracking", logger)``. Other estimators are returned unchanged.
        """
        net = tracked_network(estimator)
        if net is None:
            if holds_network(estimator):
                warnings.warn(
                    f"{run_name}: the network inside {type(estimator).__name__} "
                    "cannot be given a logger here, so this fit is not tracked.",
                    UserWarning,
                    stacklevel=caller_stacklevel(),
                )
            return estimator
        child = clone(self.logger)
        child.set_params(
            run_name=run_name,
            parent_run_id=self.parent_run_id,
            tags={**(self.logger.tags or {}), **{k: str(v) for k, v in tags.items()}},
        )
        net.set_params(callbacks=[*(net.callbacks or []), (CALLBACK_NAME, child)])
        return estimator


@contextmanager
def parent_run(tracking, run_name, params):
    """Yield :class:`NestedRuns` under a new parent run (None without tracking).

    The parent run records ``params`` and ends ``FINISHED``, or ``FAILED``
    when an exception escapes; runs nested under it that are still running
    then are marked ``FAILED`` when named in ``runs.failed`` (fits that
    raised, their error scored), otherwise ``KILLED`` (pruned trials, fits
    cut short by an error that ended the whole comparison or search).
    """
    if tracking is None:
        yield None
        return
    if not isinstance(tracking, MLflowLogger):
        raise TypeError(
            f"tracking must be an MLflowLogger or None, got {type(tracking).__name__}."
        )
    client = make_client(tracking.tracking_uri)
    experiment, run_id = start_run(client, tracking, run_name, {})
    log_params(client, run_id, {k: loggable(v) for k, v in params.items()})
    runs = NestedRuns(tracking, run_id)
    status = "FAILED"
    try:
        yield runs
        status = "FINISHED"
    finally:
        end_children(client, experiment, run_id, failed=runs.failed)
        if runs.results:
            log_metrics(client, run_id, runs.results, 0)
        client.set_terminated(run_id, status)
