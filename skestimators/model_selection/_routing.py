"""What reaches each fold: the scorer, and the parameters of fit and score.

Shared by :func:`compare_variants` and :class:`OptunaSearchCV`, as
scikit-learn's ``cross_validate`` does it: sample-aligned fit parameters are
indexed per fold, and with metadata routing enabled every parameter goes
where the estimator, the splitter and the scorer request it.
"""

from __future__ import annotations

from collections.abc import Mapping

import scipy.sparse as sp
from sklearn import get_config
from sklearn.metrics import check_scoring
from sklearn.utils import Bunch, _safe_indexing
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    process_routing,
)
from sklearn.utils.validation import _is_arraylike, _make_indexable, _num_samples


def scoring_spec(estimator, scoring) -> dict:
    """``scoring`` as ``{metric_name: str or callable}``."""
    if scoring is None:
        return {"score": check_scoring(estimator)}
    if isinstance(scoring, str):
        return {scoring: scoring}
    if callable(scoring):
        return {"score": scoring}
    if isinstance(scoring, Mapping):
        return dict(scoring)
    if isinstance(scoring, (list, tuple, set)):
        return {s: s for s in scoring}
    raise ValueError(
        "scoring must be None, a string, a callable, a list/tuple of strings or "
        f"a dict of name -> scorer, got {scoring!r}."
    )


def multimetric_scorer(estimator, scoring):
    """A scorer returning ``{metric: value}`` (predictions computed once)."""
    return check_scoring(estimator, scoring_spec(estimator, scoring))


def split_fit_params(fit_params, n_samples, indices):
    """Index the sample-aligned fit parameters (``sample_weight``...) by fold.

    As scikit-learn's ``cross_validate``: an array-like (sparse matrices too)
    with one entry per sample is indexed, anything else passes unchanged.
    """
    out = {}
    for key, value in (fit_params or {}).items():
        if _per_sample(value, n_samples):
            value = _safe_indexing(_make_indexable(value), indices)
        out[key] = value
    return out


def _per_sample(value, n_samples):
    """Whether ``value`` holds one entry per sample."""
    if isinstance(value, (str, bytes, Mapping)):
        return False
    if not (_is_arraylike(value) or sp.issparse(value)):
        return False
    try:
        return _num_samples(value) == n_samples
    except TypeError:  # a 0-d array, an unsized iterable
        return False


def route_params(
    estimator, splitter, scoring, params, groups, owner="compare_variants"
):
    """The fit parameters of ``estimator``, its scorer's and the splitter's.

    With scikit-learn's metadata routing enabled, ``params`` are routed by
    each one's requests, as in ``cross_validate`` (``groups`` must then be
    passed in ``params``); otherwise ``groups`` go to the splitter and
    ``params`` to ``fit``. Returns a Bunch with ``splitter.split``,
    ``estimator.fit`` and ``scorer.score``.
    """
    params = {} if params is None else params
    if not get_config()["enable_metadata_routing"]:
        return Bunch(
            splitter=Bunch(split={"groups": groups}),
            estimator=Bunch(fit=params),
            scorer=Bunch(score={}),
        )
    if groups is not None:
        raise ValueError(
            "groups can only be passed if metadata routing is not enabled; with "
            "routing enabled, pass them in params, as in cross_validate."
        )
    scorer = multimetric_scorer(estimator, scoring)
    router = (
        MetadataRouter(owner=owner)
        .add(
            splitter=splitter,
            method_mapping=MethodMapping().add(caller="fit", callee="split"),
        )
        .add(
            estimator=estimator,
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )
        .add(
            scorer=scorer,
            method_mapping=MethodMapping().add(caller="fit", callee="score"),
        )
    )
    routed = process_routing(router, "fit", **params)
    # The scorer routes on to the estimator's score (its requests unset, say)
    # only when called: check that now, not after every fold has trained.
    process_routing(scorer, "score", **routed.scorer.score)
    return routed
